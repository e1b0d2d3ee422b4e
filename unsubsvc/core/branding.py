"""A list's brand on recipient pages and mail: colour checks (WCAG 2.x) and logo sniffing.

The accent colour is used as a button background under white text and as link colour on
the page background, so it must reach WCAG 2.x AA (4.5:1, success criterion 1.4.3) in both
roles. A logo is accepted only when its bytes are a raster image we recognise: the file name
and a claimed type are never trusted, and SVG is refused because it can carry script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from unsubsvc.core.errors import InvalidInput

#: WCAG 2.x AA minimum contrast for normal text (success criterion 1.4.3).
AA_CONTRAST = 4.5
#: The page background of the recipient pages (``body`` in static/style.css).
PAGE_BACKGROUND = "#f3f3f6"
#: The text colour on a primary (accent) button.
BUTTON_TEXT = "#ffffff"
#: The largest logo we store, in bytes.
MAX_LOGO_BYTES = 512 * 1024
#: Longest free-text brand fields (match the columns).
MAX_SENDER_NAME = 200
MAX_PRIVACY_URL = 2000
MAX_FOOTER = 2000

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


class BrandError(InvalidInput):
    """A brand value we refuse; the message says why and what to do."""


@dataclass(frozen=True)
class Brand:
    """What a recipient page or mail shows about its sender."""

    sender_name: str
    color: str | None = None
    footer: str | None = None
    privacy_url: str | None = None
    logo_url: str | None = None
    stylesheet_url: str | None = None


@dataclass(frozen=True)
class Logo:
    """A logo whose bytes were checked."""

    data: bytes
    content_type: str


def parse_color(text: str) -> str:
    """Return ``#rrggbb`` for ``#RRGGBB`` or ``#RGB``; raise BrandError otherwise."""
    value = text.strip()
    if not _HEX.fullmatch(value):
        raise BrandError(f"colour must be #RRGGBB or #RGB, not {text!r}")
    digits = value[1:].lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits


def _channel(value: int) -> float:
    # WCAG 2.x relative luminance: sRGB channel linearisation (threshold 0.04045 per sRGB).
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of a colour (0 black … 1 white)."""
    rgb = parse_color(color)
    r, g, b = (int(rgb[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.x contrast ratio (L1 + 0.05) / (L2 + 0.05), from 1 to 21."""
    a, b = relative_luminance(first), relative_luminance(second)
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


def darker_shade(color: str) -> str:
    """Return the lightest shade of ``color`` (same hue, darker) passing AA in both roles."""
    rgb = parse_color(color)
    r, g, b = (int(rgb[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(100, -1, -1):
        factor = step / 100
        shade = f"#{int(r * factor):02x}{int(g * factor):02x}{int(b * factor):02x}"
        if _passes(shade):
            return shade
    return "#000000"


def _passes(color: str) -> bool:
    return (
        contrast_ratio(color, BUTTON_TEXT) >= AA_CONTRAST
        and contrast_ratio(color, PAGE_BACKGROUND) >= AA_CONTRAST
    )


def check_accent(text: str) -> str:
    """Return the normalised accent colour, or raise BrandError with its ratio and a fix."""
    color = parse_color(text)
    on_button = contrast_ratio(color, BUTTON_TEXT)
    on_page = contrast_ratio(color, PAGE_BACKGROUND)
    if on_button >= AA_CONTRAST and on_page >= AA_CONTRAST:
        return color
    worst = min(on_button, on_page)
    raise BrandError(
        f"colour {color} has a contrast ratio of {worst:.2f}:1 "
        f"(white button text {on_button:.2f}:1, page background {on_page:.2f}:1); "
        f"WCAG AA needs {AA_CONTRAST}:1 — try a darker shade such as {darker_shade(color)}"
    )


def sniff_image(data: bytes) -> str | None:
    """Return the image type the bytes themselves announce (magic numbers), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _looks_like_svg(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in data[:4096].lower())


def check_logo(data: bytes) -> Logo:
    """Return the checked logo, or raise BrandError (too big, SVG, or not a known image)."""
    if not data:
        raise BrandError("the logo file is empty")
    if len(data) > MAX_LOGO_BYTES:
        raise BrandError(
            f"the logo is {len(data)} bytes; the limit is {MAX_LOGO_BYTES} bytes (512 KiB)"
        )
    content_type = sniff_image(data)
    if content_type is not None:
        return Logo(data=data, content_type=content_type)
    if _looks_like_svg(data):
        raise BrandError(
            "SVG logos are refused: an SVG can carry script; use PNG, JPEG, GIF or WebP"
        )
    raise BrandError("the logo is not a PNG, JPEG, GIF or WebP image (checked by its content)")


def check_sender_name(text: str) -> str:
    """Return the trimmed sender name; refuse empty or overlong ones."""
    value = " ".join(text.split())
    if not value or len(value) > MAX_SENDER_NAME:
        raise BrandError(f"sender name must be 1 to {MAX_SENDER_NAME} characters")
    return value


def check_privacy_url(text: str) -> str:
    """Return the URL if it is an absolute https:// (or http://) link; refuse others."""
    value = text.strip()
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value, flags=re.IGNORECASE):
        raise BrandError("privacy URL must be an absolute http:// or https:// address")
    if len(value) > MAX_PRIVACY_URL:
        raise BrandError(f"privacy URL must be at most {MAX_PRIVACY_URL} characters")
    return value


def check_footer(text: str) -> str:
    """Return the trimmed footer (postal address etc.); refuse overlong ones."""
    value = text.strip()
    if len(value) > MAX_FOOTER:
        raise BrandError(f"footer must be at most {MAX_FOOTER} characters")
    return value
