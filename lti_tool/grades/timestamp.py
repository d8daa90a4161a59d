"""RFC 3161 timestamps for the exported checkpoint file, where a timestamp authority is set.

`LTI_TOOL_EVIDENCE_TSA_URL` names the authority (e.g. the one the institution's records office
uses); the request asks for a SHA-256 message imprint of the file's digest
(`checkpoints_digest`) and a signing certificate, and the granted token (DER, base64) is
added to the file as `timestamp`. Without the setting the file is written unstamped. The
authority is an operator setting, not an untrusted input; the call is still bounded in time
and size and never follows redirects.
"""

from __future__ import annotations

import base64
import secrets

import requests
from asn1crypto import algos, core, tsp

from lti_tool.errors import ToolError
from lti_tool.settings import Settings

MAX_REPLY_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 30


class TimestampError(ToolError):
    status = 502
    code = "timestamp_failed"


def request_token(url: str, digest_hex: str) -> bytes:
    """Ask the authority at `url` to stamp `digest_hex` (SHA-256); the TimeStampToken (DER)."""
    nonce = int.from_bytes(secrets.token_bytes(8), "big")
    request = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": tsp.MessageImprint({
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "hashed_message": bytes.fromhex(digest_hex)}),
        "nonce": core.Integer(nonce),
        "cert_req": True,
    })
    try:
        with requests.post(url, data=request.dump(), stream=True, allow_redirects=False,
                           timeout=TIMEOUT_SECONDS,
                           headers={"Content-Type": "application/timestamp-query"}) as reply:
            body = b""
            for chunk in reply.iter_content(65536):
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise TimestampError("The timestamp authority's reply is too large.")
            status = reply.status_code
    except requests.RequestException as exc:
        raise TimestampError(f"The timestamp authority did not answer: {exc}") from exc
    if status != 200:
        raise TimestampError(f"The timestamp authority answered HTTP {status}.")
    try:
        response = tsp.TimeStampResp.load(body)
        granted = response["status"]["status"].native
    except (ValueError, KeyError, TypeError) as exc:
        raise TimestampError("The timestamp authority's reply is not an RFC 3161 response.") \
            from exc
    if granted not in ("granted", "granted_with_mods"):
        raise TimestampError(f"The timestamp authority refused: {granted}.")
    try:
        token = response["time_stamp_token"]
        info = token["content"]["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]["hashed_message"].native
        echoed = info["nonce"].native
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TimestampError("The timestamp authority's reply is not an RFC 3161 response.") \
            from exc
    if imprint != bytes.fromhex(digest_hex) or echoed != nonce:
        raise TimestampError("The timestamp authority stamped something else.")
    return token.dump()


def stamp_if_configured(settings: Settings, data: dict) -> None:
    """Add an RFC 3161 token over `data["digest"]` when `evidence_tsa_url` is set."""
    url = settings.evidence_tsa_url
    if not url:
        return
    token = request_token(url, data["digest"])
    data["timestamp"] = {"rfc3161": True, "authority": url, "imprint": "sha256:" + data["digest"],
                         "token": base64.b64encode(token).decode("ascii")}
