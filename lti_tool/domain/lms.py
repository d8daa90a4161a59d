"""Rules about an LMS registration that several layers need (pure)."""

from __future__ import annotations

MOODLE_REST_ENDPOINT = "/webservice/rest/server.php"


def rest_base_url(lms_kind: str, issuer: str, configured: str | None) -> str | None:
    """The LMS's REST base URL: the operator's, else for Moodle the issuer (Moodle's `wwwroot`,
    which Dynamic Registration records) + the web-service endpoint; None when unknown."""
    if configured:
        return configured
    if lms_kind == "moodle" and issuer.startswith(("https://", "http://")):
        return issuer.rstrip("/") + MOODLE_REST_ENDPOINT
    return None
