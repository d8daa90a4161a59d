"""Badge images the tool draws itself (no image library needed): a PNG medal and an SVG one.

Used when a micro-credential has no image of its own, and as the image credentials are baked
into. Drawn once per colour and size and cached.
"""

from __future__ import annotations

import hashlib
import html
import io
from functools import lru_cache

import png

SIZE = 256


def _colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return 40 + digest[0] % 120, 60 + digest[1] % 120, 90 + digest[2] % 130


@lru_cache(maxsize=64)
def medal_png(seed: str, size: int = SIZE) -> bytes:
    """A round medal with a ring, its colour derived from `seed` (the MC code)."""
    red, green, blue = _colour(seed)
    centre, outer, ring = (size - 1) / 2, size / 2 - 2, size / 2 - 18
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            distance = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
            if distance > outer:
                row += b"\0\0\0\0"
            elif distance > ring:
                row += bytes((230, 190, 60, 255))
            else:
                shade = 1 - 0.35 * distance / ring
                # Lightened towards the centre, never past 255 (blue reaches 219 + 60).
                row += bytes((min(255, int(red * shade + 60)), min(255, int(green * shade + 60)),
                              min(255, int(blue * shade + 60)), 255))
        rows.append(row)
    out = io.BytesIO()
    png.Writer(size, size, greyscale=False, alpha=True).write(out, rows)
    return out.getvalue()


def medal_svg(seed: str, title: str, code: str) -> str:
    red, green, blue = _colour(seed)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256" width="256" '
        f'height="256" role="img" aria-label="{html.escape(title)}">'
        f"<title>{html.escape(title)}</title>"
        '<circle cx="128" cy="128" r="126" fill="#e6be3c"/>'
        f'<circle cx="128" cy="128" r="110" fill="rgb({red},{green},{blue})"/>'
        '<text x="128" y="138" font-family="sans-serif" font-size="26" fill="#fff" '
        f'text-anchor="middle">{html.escape(code[:14])}</text></svg>'
    )
