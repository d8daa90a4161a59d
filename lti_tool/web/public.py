"""Responses for public documents: what any site's script may read (verifiers, editors).

Credentials, issuer profiles and the published JSON Schemas are public by design, so they carry
`Access-Control-Allow-Origin: *`; a schema file also caches for an hour.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response

SCHEMA = "application/schema+json"


def public_document(body: str, mimetype: str, *, max_age: int | None = None) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Access-Control-Allow-Origin"] = "*"
    if max_age is not None:
        response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


def published_schema(path: Path) -> Response:
    """A JSON Schema the tool publishes (Design Plan files, mapping files)."""
    return public_document(path.read_text(encoding="utf-8"), SCHEMA, max_age=3600)
