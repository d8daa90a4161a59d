"""Access logs without secrets: the URLs and Referers that gunicorn and werkzeug print.

The query string of every /lti/* request is left out (login hints, state, registration and
invite tokens), and anywhere else the values of the parameters that can carry a session or a
one-time token (`lc`, `sid`, `token`, `registration_token`, `invite`, `state`, `nonce`, ...)
are replaced by `[redacted]`. Referers get the same treatment.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.serving import WSGIRequestHandler

REDACTED = "[redacted]"
SECRET_PARAMS = frozenset({
    "lc", "sid", "token", "registration_token", "invite", "state", "nonce", "id_token",
    "login_hint", "lti_message_hint", "code", "jwt",
})
QUIET_PREFIXES = ("/lti/",)


def redact_url(url: str) -> str:
    """`url` (a request target or a full URL) safe to print."""
    if not url or url == "-":
        return url
    parts = urlsplit(url)
    if not parts.query:
        return url
    if parts.path.startswith(QUIET_PREFIXES) or parts.path == "/lti":
        query = REDACTED
    else:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in pairs],
                          safe="[]")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def redact_request_line(line: str) -> str:
    """`GET /path?query HTTP/1.1` with the target redacted."""
    method, sep, rest = line.partition(" ")
    target, sep2, version = rest.rpartition(" ")
    if not sep or not sep2:
        return redact_url(line)
    return f"{method} {redact_url(target)} {version}"


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler (demo, tests) logging redacted request lines."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path, line = self.path, getattr(self, "requestline", "")
        self.path = redact_url(path)
        self.requestline = redact_request_line(line)
        try:
            super().log_request(code, size)
        finally:
            self.path, self.requestline = path, line
