"""The gallery page links every file by a quoted relative URL and shortens raw ids."""

from __future__ import annotations

from flowrunner.kit.gallery import Asset, Card, Section, render_gallery, short


def test_file_names_are_quoted_in_links_and_sources() -> None:
    cards = [Card(instance=name, step="s", endpoint="e", badge="called",
                  assets=[Asset(name, 10, 32, 32)])
             for name in ("banner-16:9.png", "a #1.png", "dir/ü.png")]
    page = render_gallery("kit", "", "3 assets", [Section("s", "", cards)])
    assert 'src="banner-16%3A9.png"' in page  # not read as a URL scheme
    assert 'href="a%20%231.png"' in page  # not a fragment
    assert 'src="dir/%C3%BC.png"' in page
    assert 'src="banner-16:9.png"' not in page


def test_style_ids_are_shown_short() -> None:
    assert short("4515d324-f8ac-4397-aca9-5bd06bff3113") == "4515d324…"
    assert short({"sha256": "ab" * 32}) == "file abababab…"
    assert short("digital_illustration") == "digital_illustration"
