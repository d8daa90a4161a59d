"""Baking credentials into images and reading them back (Open Badges 3.0 baking rules).

PNG: one iTXt chunk, keyword `openbadgecredential`, uncompressed, holding the credential JSON
or its compact JWS, placed before IEND. SVG: one `openbadges:credential` element right inside
the root, in the `https://purl.imsglobal.org/ob/v3p0` namespace, with the JSON in CDATA or the
JWS in its `verify` attribute. Readers take untrusted bytes: every failure is a `BakingError`.
"""

from __future__ import annotations

import html
import io
import re
import zlib

import png

PNG_KEYWORD = b"openbadgecredential"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NAMESPACE = "https://purl.imsglobal.org/ob/v3p0"
MAX_CHUNKS = 10000
MAX_TEXT = 4 * 1024 * 1024


class BakingError(ValueError):
    """The image is not a PNG/SVG, or carries no (or more than one) baked credential."""


def _itxt(text: str) -> bytes:
    return PNG_KEYWORD + b"\0\0\0" + b"\0" + b"\0" + text.encode()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(PNG_SIGNATURE):
        raise BakingError("not a PNG image")
    try:
        chunks = []
        for kind, body in png.Reader(bytes=data).chunks():
            chunks.append((kind, body))
            if len(chunks) > MAX_CHUNKS:
                raise BakingError("too many PNG chunks")
        return chunks
    except BakingError:
        raise
    except Exception as exc:  # pypng raises several error types on damaged files
        raise BakingError(f"damaged PNG: {exc}") from None


def _is_credential_chunk(kind: bytes, body: bytes) -> bool:
    return kind == b"iTXt" and body.split(b"\0", 1)[0] == PNG_KEYWORD


def bake_png(image: bytes, credential_text: str) -> bytes:
    """The image with the credential in its only `openbadgecredential` iTXt chunk."""
    kept = [(k, b) for k, b in _chunks(image) if not _is_credential_chunk(k, b)]
    end = next(i for i, (kind, _b) in enumerate(kept) if kind == b"IEND")
    kept.insert(end, (b"iTXt", _itxt(credential_text)))
    out = io.BytesIO()
    png.write_chunks(out, kept)
    return out.getvalue()


def _itxt_text(body: bytes) -> str:
    try:
        _keyword, rest = body.split(b"\0", 1)
        compressed, _method = rest[0], rest[1]
        _language, rest = rest[2:].split(b"\0", 1)
        _translated, text = rest.split(b"\0", 1)
        if compressed:
            inflater = zlib.decompressobj()
            text = inflater.decompress(text, MAX_TEXT)
        if len(text) >= MAX_TEXT:
            raise BakingError("baked credential too large")
        return text.decode("utf-8")
    except BakingError:
        raise
    except (ValueError, IndexError, zlib.error, UnicodeDecodeError) as exc:
        raise BakingError(f"malformed openbadgecredential chunk: {exc}") from None


def extract_png(image: bytes) -> str:
    found = [body for kind, body in _chunks(image) if _is_credential_chunk(kind, body)]
    if not found:
        raise BakingError("the PNG carries no openbadgecredential chunk")
    if len(found) > 1:
        raise BakingError("the PNG carries more than one openbadgecredential chunk")
    return _itxt_text(found[0])


_ROOT = re.compile(r"<svg\b[^>]*>", re.IGNORECASE)
_VERIFY = re.compile(r"""\bverify\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_CDATA = re.compile(r"^\s*<!\[CDATA\[(.*)\]\]>\s*$", re.DOTALL)


def _prefix(svg: str) -> str | None:
    """The prefix the document binds to the OB 3.0 namespace, if any."""
    found = re.search(rf"""xmlns:([A-Za-z_][\w.-]*)\s*=\s*["']{re.escape(SVG_NAMESPACE)}["']""",
                      svg)
    return found.group(1) if found else None


def _element(svg: str, prefix: str, start: int = 0) -> tuple[int, int, str, str] | None:
    """(start, end, attributes, body) of the next <prefix:credential> element (linear scan)."""
    opening = f"<{prefix}:credential"
    begin = svg.find(opening, start)
    while begin != -1 and svg[begin + len(opening):begin + len(opening) + 1] not in (
            " ", "/", ">", "\n", "\t", "\r"):
        begin = svg.find(opening, begin + 1)
    if begin == -1:
        return None
    tag_end = svg.find(">", begin)
    if tag_end == -1:
        raise BakingError("unterminated openbadges:credential element")
    attributes = svg[begin + len(opening):tag_end]
    if attributes.endswith("/"):
        return begin, tag_end + 1, attributes[:-1], ""
    closing = svg.find(f"</{prefix}:credential", tag_end)
    if closing == -1:
        raise BakingError("unterminated openbadges:credential element")
    close_end = svg.find(">", closing)
    if close_end == -1:
        raise BakingError("unterminated openbadges:credential element")
    return begin, close_end + 1, attributes, svg[tag_end + 1:closing]


def bake_svg(svg: str, credential_text: str, *, is_jwt: bool) -> str:
    """The SVG with one `openbadges:credential` element as the root's first child."""
    root = _ROOT.search(svg)
    if root is None:
        raise BakingError("not an SVG image")
    prefix = _prefix(svg)
    body = svg[root.end():]
    while prefix and (found := _element(body, prefix)) is not None:
        body = body[:found[0]] + body[found[1]:]
    opening = root.group(0)
    if prefix != "openbadges":
        opening = opening[:-1].rstrip("/") + f' xmlns:openbadges="{SVG_NAMESPACE}">'
    if is_jwt:
        element = f'<openbadges:credential verify="{html.escape(credential_text)}"/>'
    else:
        safe = credential_text.replace("]]>", "]]]]><![CDATA[>")
        element = f"<openbadges:credential><![CDATA[{safe}]]></openbadges:credential>"
    return svg[:root.start()] + opening + element + body


def extract_svg(svg: str) -> str:
    if _ROOT.search(svg) is None:
        raise BakingError("not an SVG image")
    prefix = _prefix(svg)
    found = _element(svg, prefix) if prefix else None
    if not prefix or found is None:
        raise BakingError("the SVG carries no openbadges:credential element")
    if _element(svg, prefix, found[1]) is not None:
        raise BakingError("the SVG carries more than one openbadges:credential element")
    _start, _end, attributes, body = found
    verify = _VERIFY.search(attributes)
    if verify:
        return html.unescape(verify.group(1) or verify.group(2) or "")
    cdata = _CDATA.match(body)
    text = cdata.group(1).replace("]]]]><![CDATA[>", "]]>") if cdata else html.unescape(body)
    if not text.strip():
        raise BakingError("the openbadges:credential element is empty")
    return text
