"""Badge faces: the title, the EQF level in the plan's language and the awarding body."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lti_tool.badges import images

FACE = images.BadgeFace(seed="7", title="Veri Okuryazarlığı: Mühendisler için Temel Beceriler",
                        eqf_level=6, issuer="Örnek Üniversitesi", language="tr")


def test_svg_face_says_title_level_and_issuer() -> None:
    svg = images.badge_svg(FACE)
    root = ET.fromstring(svg)
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Okuryazarlığı:" in text and "AYÇ 6. düzey" in text and "Örnek Üniversitesi" in text
    assert root.get("aria-label", "").startswith("Veri Okuryazarlığı")
    english = images.badge_svg(images.BadgeFace("7", "Data Literacy", 4, "Example University"))
    assert "EQF level 4" in english


def test_png_face_is_a_real_image_that_differs_by_title() -> None:
    first = Image.open(io.BytesIO(images.badge_png(FACE)))
    assert first.size == (256, 256) and first.mode == "RGBA"
    other = images.BadgeFace(seed="7", title="Another title", eqf_level=6,
                             issuer="Örnek Üniversitesi", language="tr")
    assert images.badge_png(other) != images.badge_png(FACE)  # the text is drawn


@given(st.text(max_size=300), st.text(max_size=200))
def test_any_title_and_issuer_make_well_formed_svg(title: str, issuer: str) -> None:
    title = "".join(ch for ch in title if ch.isprintable())
    issuer = "".join(ch for ch in issuer if ch.isprintable())
    svg = images.badge_svg(images.BadgeFace("s", title, 5, issuer))
    ET.fromstring(svg)  # escaped: no markup from the plan reaches the image


def test_wrap_never_exceeds_its_lines() -> None:
    assert images.wrap("a " * 100, 16, 3)[-1].endswith("…")
    assert len(images.wrap("one two three four five six seven eight", 8, 2)) == 2
