"""W3C Bitstring Status List: the bitstring, its encoding and the status entry of a credential.

Lists hold 131,072 entries (16 KB, the spec's minimum for herd privacy) and indexes are drawn
at random, so neither a list nor an index says who was issued when.
"""

from __future__ import annotations

import base64
import gzip
import io
import secrets

LIST_SIZE = 131072
FILL_LIMIT = LIST_SIZE // 2  # open a new list beyond this, so random draws stay cheap


def empty_bits(size: int = LIST_SIZE) -> bytes:
    return bytes(size // 8)


def encode(bits: bytes) -> str:
    """Multibase base64url (no padding) of the GZIP-compressed bitstring."""
    compressed = gzip.compress(bits, mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).decode().rstrip("=")


def decode(encoded: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
    if not encoded.startswith("u"):
        raise ValueError("encodedList must be multibase base64url ('u' prefix)")
    data = encoded[1:]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
        bits = stream.read(max_bytes + 1)
    if len(bits) > max_bytes:
        raise ValueError("status list too large")
    return bits


def get_bit(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise IndexError(f"status index {index} outside a list of {len(bits) * 8} entries")
    return bool(bits[index // 8] >> (7 - index % 8) & 1)


def set_bit(bits: bytes, index: int, value: bool = True) -> bytes:
    if not 0 <= index < len(bits) * 8:
        raise IndexError(f"status index {index} outside a list of {len(bits) * 8} entries")
    changed = bytearray(bits)
    mask = 1 << (7 - index % 8)
    changed[index // 8] = changed[index // 8] | mask if value else changed[index // 8] & ~mask
    return bytes(changed)


def random_index(size: int = LIST_SIZE) -> int:
    return secrets.randbelow(size)


def entry(list_url: str, index: int, purpose: str = "revocation") -> dict:
    """The `credentialStatus` of a credential at `index` of the list at `list_url`."""
    return {"id": f"{list_url}#{index}", "type": "BitstringStatusListEntry",
            "statusPurpose": purpose, "statusListIndex": str(index),
            "statusListCredential": list_url}


def list_credential(list_url: str, issuer: str, bits: bytes, valid_from: str,
                    purpose: str = "revocation") -> dict:
    """The unsigned BitstringStatusListCredential (VC 2.0 context only, so the issuer is its id:
    the OB terms of a full Profile would not be defined there)."""
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "credentialSubject": {"id": f"{list_url}#list", "type": "BitstringStatusList",
                              "statusPurpose": purpose, "encodedList": encode(bits)},
    }
