"""What the launch tests in Chromium share: the browser, live servers, LTI platform storage.

`PLATFORM_STORAGE_JS` is the platform's side of the LTI Client Side postMessage storage
(`lti.put_data` / `lti.get_data`), as Canvas answers it from its `post_message_forwarding`
frame and a stand-in LMS from its course page. It keeps the subjects it answered in
`window.ltiLog` of the top page (the page itself when it is the top page), so a test can read
the exchange with `page.evaluate("window.ltiLog")`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from tests.conftest import skip_unless_installed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

PLATFORM_STORAGE_JS = """
var store = {};
window.ltiLog = window.parent.ltiLog = (window.parent.ltiLog || []);
window.addEventListener("message", function (event) {
  var d = event.data;
  if (!d || typeof d.subject !== "string") { return; }
  window.ltiLog.push(d.subject);
  var answer = {subject: d.subject + ".response", message_id: d.message_id, key: d.key};
  if (d.subject === "lti.put_data") { store[d.key] = d.value; answer.value = d.value; }
  else if (d.subject === "lti.get_data") { answer.value = store[d.key]; }
  else { return; }
  event.source.postMessage(answer, event.origin);
});
"""


class Served:
    """A WSGI app served live on loopback, addressed by `host` (127.0.0.1 or localhost: two
    sites to a browser)."""

    def __init__(self, app: Any, host: str) -> None:
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://{host}:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()


@contextmanager
def chromium_browser(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium through Playwright (skipped where it is not installed)."""
    if not Path(CHROMIUM).exists():
        skip_unless_installed("Debian's chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()
