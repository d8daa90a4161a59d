"""Badge images the tool draws itself: a face with the micro-credential's title, EQF level and
awarding body, as SVG and as PNG (Pillow; DejaVu Sans where installed, for Turkish letters).

Used when a micro-credential has no image of its own, and as the image credentials are baked
into. Drawn once per face and size and cached. The plain medal stays for old callers.
"""

from __future__ import annotations

import hashlib
import html
import io
from dataclasses import dataclass
from functools import lru_cache

import png
from PIL import Image, ImageDraw, ImageFont

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


# -- Designed badge faces: the micro-credential's title, level and awarding body ----------------

FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
              "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LEVEL_LABELS = {"en": "EQF level {level}", "tr": "AYÇ {level}. düzey"}


@dataclass(frozen=True)
class BadgeFace:
    """What a badge image says: in the plan's language, never the viewer's (it is baked)."""

    seed: str  # colour (the micro-credential version)
    title: str
    eqf_level: int | None
    issuer: str
    language: str = "en"

    @property
    def level_text(self) -> str:
        if not self.eqf_level:
            return ""
        pattern = LEVEL_LABELS.get(self.language[:2], LEVEL_LABELS["en"])
        return pattern.format(level=self.eqf_level)


def wrap(text: str, width: int, lines: int) -> list[str]:
    """Words into at most `lines` lines of about `width` characters (the last one cut with …)."""
    words, out, line = text.split(), [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if len(candidate) <= width or not line:
            line = candidate
            continue
        out.append(line)
        line = word
    if line:
        out.append(line)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: max(1, width - 1)].rstrip() + "…"
    return [piece if len(piece) <= width + 2 else piece[: width + 1] + "…" for piece in out]


def badge_svg(face: BadgeFace) -> str:
    """A 256 px medal with the title (up to 3 lines), the EQF level and the awarding body."""
    red, green, blue = _colour(face.seed)
    title_lines = wrap(face.title, 16, 3)
    first = 118 - 12 * (len(title_lines) - 1)
    texts = [f'<text x="128" y="{first + 24 * i}" font-size="20" font-weight="bold">'
             f"{html.escape(line)}</text>" for i, line in enumerate(title_lines)]
    if face.level_text:
        texts.append(f'<text x="128" y="{first + 24 * len(title_lines) + 8}" font-size="15">'
                     f"{html.escape(face.level_text)}</text>")
    issuer = wrap(face.issuer, 24, 1)
    label = html.escape(f"{face.title}, {face.level_text}, {face.issuer}".replace(", ,", ","))
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256" width="256" '
        f'height="256" role="img" aria-label="{label}" lang="{html.escape(face.language)}">'
        f"<title>{label}</title>"
        '<circle cx="128" cy="128" r="126" fill="#e6be3c"/>'
        f'<circle cx="128" cy="128" r="110" fill="rgb({red},{green},{blue})"/>'
        '<g font-family="DejaVu Sans, Verdana, sans-serif" fill="#fff" text-anchor="middle">'
        + "".join(texts)
        + (f'<text x="128" y="214" font-size="12">{html.escape(issuer[0])}</text>'
           if issuer else "")
        + "</g></svg>"
    )


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_PATHS:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)  # Pillow's own font where DejaVu is not installed


@lru_cache(maxsize=64)
def badge_png(face: BadgeFace, size: int = SIZE) -> bytes:
    """The same face as `badge_svg`, drawn with Pillow (baked PNGs need pixels)."""
    scale = size / 256
    red, green, blue = _colour(face.seed)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((2 * scale, 2 * scale, 254 * scale, 254 * scale), fill=(230, 190, 60, 255))
    draw.ellipse((18 * scale, 18 * scale, 238 * scale, 238 * scale),
                 fill=(red, green, blue, 255))
    title_lines = wrap(face.title, 16, 3)
    first = 118 - 12 * (len(title_lines) - 1)
    bold = _font(int(20 * scale))
    for i, line in enumerate(title_lines):
        draw.text((128 * scale, (first + 24 * i) * scale), line, font=bold, fill="white",
                  anchor="ms")
    if face.level_text:
        draw.text((128 * scale, (first + 24 * len(title_lines) + 8) * scale), face.level_text,
                  font=_font(int(15 * scale)), fill="white", anchor="ms")
    issuer = wrap(face.issuer, 24, 1)
    if issuer:
        draw.text((128 * scale, 214 * scale), issuer[0], font=_font(int(12 * scale)),
                  fill="white", anchor="ms")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
