"""The gallery page links every file by a quoted relative URL."""

from __future__ import annotations

from flowrunner.gallery import Card, render_gallery


def test_file_names_are_quoted_in_links_and_sources() -> None:
    cards = [Card(file=name, instance=name, step="s", endpoint="e", status="called")
             for name in ("banner-16:9.png", "a #1.png", "dir/ü.png")]
    page = render_gallery("kit", cards, summary="3 assets")
    assert 'src="banner-16%3A9.png"' in page  # not read as a URL scheme
    assert 'href="a%20%231.png"' in page  # not a fragment
    assert 'src="dir/%C3%BC.png"' in page
    assert 'src="banner-16:9.png"' not in page
