// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copied-" + button.dataset.copy);
  field.select();
  const done = () => { if (status) status.textContent = button.dataset.copied; };
  // The Clipboard API may be refused inside an LMS iframe; fall back to execCommand.
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => {
      if (document.execCommand("copy")) done();
    });
  } else if (document.execCommand("copy")) {
    done();
  }
});

// A sync runs (the first one starts with the instructor's launch): poll its status and reload
// the page once it ends, so the overview shows every learner without a manual reload.
(() => {
  const running = document.getElementById("sync-running");
  if (!running || !running.dataset.statusUrl) return;
  const poll = () => fetch(running.dataset.statusUrl, {headers: {"Accept": "application/json"},
                                                         credentials: "same-origin"})
    .then((r) => r.json())
    .then((s) => { if (s.running) setTimeout(poll, 1500); else window.location.reload(); })
    .catch(() => setTimeout(poll, 5000));
  setTimeout(poll, 1500);
})();

// A badge image that does not load (the plan's own image on a server that is down) gives way to
// the tool's own face of the credential; nothing broken is ever shown.
document.querySelectorAll("img[data-fallback]").forEach((img) => {
  const swap = () => {
    if (img.getAttribute("src") !== img.dataset.fallback) img.src = img.dataset.fallback;
    else img.hidden = true;
  };
  if (img.complete && img.naturalWidth === 0) swap();
  else img.addEventListener("error", swap);
});
