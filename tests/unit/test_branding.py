"""The brand checks: colour parsing, WCAG 2.x contrast, logo sniffing."""

from __future__ import annotations

import pytest

from unsubsvc.core import branding
from unsubsvc.core.branding import BrandError
from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.languages import LANGUAGES, check_language

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


@pytest.mark.parametrize(
    ("given", "expected"),
    [("#A50E0E", "#a50e0e"), ("#abc", "#aabbcc"), (" #0B57D0 ", "#0b57d0"), ("#000", "#000000")],
)
def test_parse_color_normalises(given: str, expected: str) -> None:
    assert branding.parse_color(given) == expected


@pytest.mark.parametrize("given", ["a50e0e", "#12345", "#ggg", "red", "#1234567", "", "#"])
def test_parse_color_refuses_other_forms(given: str) -> None:
    with pytest.raises(BrandError, match="#RRGGBB"):
        branding.parse_color(given)


@pytest.mark.parametrize(
    ("color", "luminance"),
    [("#000000", 0.0), ("#ffffff", 1.0), ("#ff0000", 0.2126), ("#00ff00", 0.7152)],
)
def test_relative_luminance_follows_wcag(color: str, luminance: float) -> None:
    assert branding.relative_luminance(color) == pytest.approx(luminance, abs=1e-4)


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [
        ("#000000", "#ffffff", 21.0),
        ("#ffffff", "#000000", 21.0),
        ("#777777", "#ffffff", 4.48),  # the classic just-below-AA grey
        ("#0b57d0", "#ffffff", 6.4),
        ("#123456", "#123456", 1.0),
    ],
)
def test_contrast_ratio(first: str, second: str, ratio: float) -> None:
    assert branding.contrast_ratio(first, second) == pytest.approx(ratio, abs=0.05)


@pytest.mark.parametrize("color", ["#a50e0e", "#0b57d0", "#137333", "#000", "#5b2a86"])
def test_dark_accents_pass_aa(color: str) -> None:
    assert branding.check_accent(color) == branding.parse_color(color)


@pytest.mark.parametrize("color", ["#ffff00", "#cccccc", "#ffffff", "#777777", "#1e90ff"])
def test_light_accents_are_refused_with_ratio_and_darker_shade(color: str) -> None:
    with pytest.raises(BrandError) as refused:
        branding.check_accent(color)
    message = str(refused.value)
    worst = min(
        branding.contrast_ratio(color, branding.BUTTON_TEXT),
        branding.contrast_ratio(color, branding.PAGE_BACKGROUND),
    )
    assert f"{worst:.2f}:1" in message
    assert "4.5:1" in message
    suggested = message.rsplit(" ", 1)[-1]
    assert branding.check_accent(suggested) == suggested


def test_aa_is_checked_against_the_page_background_too() -> None:
    # #757575 passes on pure white (4.6:1) but not on the pages' #f3f3f6 background.
    assert branding.contrast_ratio("#757575", "#ffffff") >= 4.5
    with pytest.raises(BrandError, match="page background"):
        branding.check_accent("#757575")


def test_brand_error_is_invalid_input() -> None:
    assert issubclass(BrandError, InvalidInput)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_logo_type_comes_from_its_bytes(data: bytes, content_type: str) -> None:
    assert branding.check_logo(data).content_type == content_type


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        b"\xef\xbb\xbf  <svg/>",
    ],
)
def test_svg_is_refused_because_of_script(data: bytes) -> None:
    with pytest.raises(BrandError, match="SVG.*script"):
        branding.check_logo(data)


@pytest.mark.parametrize(
    "data", [b"this is not a PNG", b"GIF8", b"RIFF\x00\x00\x00\x00WAVE", b"<html></html>"]
)
def test_other_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(BrandError, match="not a PNG, JPEG, GIF or WebP"):
        branding.check_logo(data)


def test_empty_and_oversized_logos_are_refused() -> None:
    with pytest.raises(BrandError, match="empty"):
        branding.check_logo(b"")
    with pytest.raises(BrandError, match="512 KiB"):
        branding.check_logo(PNG + b"\x00" * branding.MAX_LOGO_BYTES)
    limit = PNG + b"\x00" * (branding.MAX_LOGO_BYTES - len(PNG))
    assert branding.check_logo(limit).content_type == "image/png"


@pytest.mark.parametrize(
    "url", ["https://example.com/privacy", "http://example.com", "HTTPS://example.com/a?b=c"]
)
def test_privacy_urls_accepted(url: str) -> None:
    assert branding.check_privacy_url(url) == url


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "/privacy", "example.com", "https://", "ftp://example.com"]
)
def test_privacy_urls_refused(url: str) -> None:
    with pytest.raises(BrandError, match="absolute"):
        branding.check_privacy_url(url)


def test_sender_name_is_trimmed_and_bounded() -> None:
    assert branding.check_sender_name("  Example   News ") == "Example News"
    with pytest.raises(BrandError):
        branding.check_sender_name("   ")
    with pytest.raises(BrandError):
        branding.check_sender_name("x" * (branding.MAX_SENDER_NAME + 1))


@pytest.mark.parametrize("code", [*LANGUAGES, "DE", " fr "])
def test_shipped_languages(code: str) -> None:
    assert check_language(code) in LANGUAGES


@pytest.mark.parametrize("code", ["it", "", "de-AT", "english"])
def test_other_languages_refused(code: str) -> None:
    with pytest.raises(InvalidInput, match="language is one of"):
        check_language(code)
