"""The root URL the demo prints: a page that says what the tool is, and a favicon."""

from __future__ import annotations


def test_root_page_says_where_to_launch_and_links_verification(client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Moodle or Canvas" in text and 'href="/verify"' in text
    assert "http://127.0.0.1:8000/lti/login" in text  # what an LMS admin needs
    assert 'rel="icon"' in text
    turkish = client.get("/?lang=tr").get_data(as_text=True)
    assert 'lang="tr"' in turkish


def test_favicon(client) -> None:
    for path in ("/favicon.ico", "/favicon.svg"):
        icon = client.get(path)
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert icon.data.startswith(b"<svg")
