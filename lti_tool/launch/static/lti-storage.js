/* LTI Client Side postMessages, platform storage (lti.put_data / lti.get_data).
 * The LMS keeps the launch state for the tool when third-party cookies are blocked.
 * `config` is {origin: platform origin, target: "_parent" or a frame name of the parent}. */
(function () {
  "use strict";
  function storageFrame(name) {
    if (name === "_parent") { return window.parent; }
    try { return window.parent.frames[name] || window.parent; } catch (e) { return window.parent; }
  }
  function send(config, subject, payload) {
    return new Promise(function (resolve, reject) {
      var id = subject + "-" + Date.now() + "-" + Math.random().toString(36).slice(2);
      var timer = setTimeout(function () { done(); reject(new Error("no answer from the LMS")); }, 3000);
      function done() { clearTimeout(timer); window.removeEventListener("message", onMessage); }
      function onMessage(event) {
        var data = event.data;
        if (event.origin !== config.origin || !data || data.message_id !== id ||
            data.subject !== subject + ".response") { return; }
        done();
        if (data.error) { reject(new Error(data.error.message || data.error.code || "error")); }
        else { resolve(data); }
      }
      window.addEventListener("message", onMessage);
      var message = {subject: subject, message_id: id};
      for (var k in payload) { if (Object.prototype.hasOwnProperty.call(payload, k)) { message[k] = payload[k]; } }
      storageFrame(config.target).postMessage(message, config.origin);
    });
  }
  window.ltiStorage = {
    put: function (config, key, value) { return send(config, "lti.put_data", {key: key, value: value}); },
    get: function (config, key) {
      return send(config, "lti.get_data", {key: key}).then(function (data) { return data.value; });
    }
  };
})();
