"""A list's brand on its recipient pages: logo and accent colour served by unsubsvc itself,
set by ``unsubsvc list brand`` or the admin page, refused when unreadable or unsafe."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.functional.conftest import MintedLinks
from tests.functional.test_admin import make_admin, sign_in
from tests.helpers import CommandRunner, csrf_token, make_list, transaction
from unsubsvc.db.models import AuditEvent, ListLogo, MailingList

ACCENT = "#5b2a86"


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (91, 42, 134)) -> bytes:
    """A real (decodable) PNG of one colour: signature, IHDR, IDAT, IEND (RFC 2083)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def logo_file(tmp_path: Path) -> Path:
    path = tmp_path / "logo.png"
    path.write_bytes(png())
    return path


def brand(runner: CommandRunner, *args: str) -> Any:
    return runner.invoke(args=["list", "brand", "news", *args])


def show(runner: CommandRunner) -> dict[str, Any]:
    result = runner.invoke(args=["list", "show", "news"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture
def branded(app: Flask, runner: CommandRunner, logo_file: Path) -> Flask:
    make_list(app)
    result = brand(
        runner,
        "--logo", str(logo_file),
        "--color", ACCENT,
        "--sender-name", "Example Books",
        "--footer", "Example Books Ltd, 1 High Street, Springfield",
        "--privacy-url", "https://books.example/privacy",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return app


def only(pattern: str, html: str) -> str:
    found = re.findall(pattern, html)
    assert len(found) == 1, (pattern, found)
    value: str = found[0]
    return value


@pytest.mark.parametrize("page", ["unsubscribe", "preferences"])
def test_recipient_pages_show_the_lists_brand(
    branded: Flask,
    client: FlaskClient,
    mint_links: Callable[..., list[MintedLinks]],
    page: str,
) -> None:
    (links,) = mint_links(["ann@example.com"])
    response = client.get(getattr(links, page))
    assert response.status_code == 200
    html = response.get_data(as_text=True)

    # The logo: an <img> unsubsvc serves itself, with the sender as alt text; same bytes.
    src = only(r'<img class="brand-logo" src="([^"]+)" alt="Example Books">', html)
    assert src.startswith("/brand/")
    logo = client.get(src)
    assert logo.status_code == 200
    assert logo.data == png()
    assert logo.mimetype == "image/png"
    assert logo.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in logo.headers["Cache-Control"]
    assert logo.headers["ETag"]

    # The colour: a stylesheet link (never inline style), whose CSS carries the accent.
    href = only(r'<link rel="stylesheet" href="(/brand/[^"]+\.css)">', html)
    css = client.get(href)
    assert css.status_code == 200
    assert css.mimetype == "text/css"
    assert f"--brand-accent: {ACCENT}" in css.get_data(as_text=True)
    assert "button.primary" in css.get_data(as_text=True)

    # Sender, postal footer, privacy link; the CSP is unchanged and no inline style.
    assert "Example Books sends you e-mail" in html
    assert "Example Books Ltd, 1 High Street, Springfield" in html
    assert '<a href="https://books.example/privacy">' in html
    assert "style=" not in html and "<style" not in html
    csp = response.headers["Content-Security-Policy"]
    assert "style-src 'self'" in csp and "img-src 'self' data:" in csp
    assert "unsafe-inline" not in csp
    assert "Set-Cookie" not in logo.headers and "Set-Cookie" not in css.headers


def test_no_changes_claim_in_the_footer(
    branded: Flask, client: FlaskClient, mint_links: Callable[..., list[MintedLinks]]
) -> None:
    (links,) = mint_links(["ann@example.com"])
    html = client.get(links.unsubscribe).get_data(as_text=True)
    assert "Changes take effect at once" not in html


def test_unbranded_pages_use_the_service_default(
    app: Flask, client: FlaskClient, mint_links: Callable[..., list[MintedLinks]]
) -> None:
    make_list(app)
    (links,) = mint_links(["ann@example.com"])
    html = client.get(links.preferences).get_data(as_text=True)
    assert "unsubsvc sends you e-mail" in html
    assert "brand-logo" not in html and "/brand/" not in html


def test_logo_and_stylesheet_urls_follow_their_content(
    branded: Flask, client: FlaskClient, runner: CommandRunner, tmp_path: Path
) -> None:
    with transaction(branded) as session:
        list_id = session.scalar(sa.select(MailingList.id).where(MailingList.name == "news"))
        old = session.get(ListLogo, list_id)
        assert old is not None
        old_digest = old.sha256[:16]
    old_url = f"/brand/{list_id}/logo-{old_digest}"
    assert client.get(old_url).status_code == 200
    cached = client.get(old_url, headers={"If-None-Match": f'"{old.sha256}"'})
    assert cached.status_code == 304

    other = tmp_path / "other.png"
    other.write_bytes(png(rgb=(0, 0, 0)))
    assert brand(runner, "--logo", str(other)).exit_code == 0
    assert client.get(old_url).status_code == 404  # a new logo, a new URL
    assert client.get(f"/brand/{list_id}/logo-0000000000000000").status_code == 404
    assert client.get(f"/brand/{list_id}/0000000000000000.css").status_code == 404
    assert client.get("/brand/999999/logo-0000000000000000").status_code == 404


@pytest.mark.parametrize("color", ["#ffff00", "#cccccc", "#777"])
def test_cli_refuses_low_contrast(app: Flask, runner: CommandRunner, color: str) -> None:
    make_list(app)
    result = brand(runner, "--color", color)
    assert result.exit_code == 1
    assert re.search(r"contrast ratio of \d+\.\d\d:1", result.output)
    assert "darker shade" in result.output
    assert show(runner)["brand"]["color"] is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (b"I am text with a .png name", "not a PNG, JPEG, GIF or WebP"),
    ],
)
def test_cli_refuses_svg_and_fake_png(
    app: Flask, runner: CommandRunner, tmp_path: Path, content: bytes, message: str
) -> None:
    make_list(app)
    fake = tmp_path / "logo.png"
    fake.write_bytes(content)
    result = brand(runner, "--logo", str(fake))
    assert result.exit_code == 1
    assert message in result.output
    assert show(runner)["brand"]["logo"] is None


def test_cli_sets_shows_and_clears_the_brand(branded: Flask, runner: CommandRunner) -> None:
    shown = show(runner)["brand"]
    assert shown["color"] == ACCENT
    assert shown["sender_name"] == "Example Books"
    assert shown["privacy_url"] == "https://books.example/privacy"
    assert shown["logo"]["content_type"] == "image/png"
    result = brand(runner, "--clear-logo", "--color", "", "--footer", "")
    assert result.exit_code == 0, result.output
    shown = show(runner)["brand"]
    assert shown["logo"] is None and shown["color"] is None and shown["footer"] is None
    assert shown["sender_name"] == "Example Books"
    with transaction(branded) as session:
        actions = session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.action == "cli.list brand")
        ).all()
    assert len(actions) == 2


def test_list_update_and_create_take_descriptions_and_language(
    app: Flask, runner: CommandRunner
) -> None:
    created = runner.invoke(
        args=["list", "create", "news", "--topic", "product", "--topic", "events",
              "--topic-description", "product=New releases, once a month",
              "--language", "de"]
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    shown = show(runner)
    assert shown["language"] == "de"
    assert shown["topic_descriptions"] == {"product": "New releases, once a month"}
    updated = runner.invoke(
        args=["list", "update", "news", "--topic-description", "events=Talks near you",
              "--topic-description", "product=", "--language", "FR"]
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    shown = show(runner)
    assert shown["language"] == "fr"
    assert shown["topic_descriptions"] == {"events": "Talks near you"}
    for args, message in (
        (["--language", "it"], "language is one of en, de, fr, es"),
        (["--topic-description", "nope=x"], "has no topic 'nope'"),
        (["--topic-description", "product"], "SLUG=TEXT"),
    ):
        refused = runner.invoke(args=["list", "update", "news", *args])
        assert refused.exit_code == 1
        assert message in refused.output


# ---- the admin page ----------------------------------------------------------------------


@pytest.fixture
def admin_client(app: Flask, client: FlaskClient, clock: FakeClock) -> FlaskClient:
    make_list(app)
    make_admin(app, clock)
    assert sign_in(client).status_code == 303
    return client


def post_brand(client: FlaskClient, logo: bytes | None = None, **fields: str) -> Any:
    page = client.get("/admin/lists/news/brand")
    assert page.status_code == 200
    data: dict[str, Any] = {
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "sender_name": "",
        "color": "",
        "footer": "",
        "privacy_url": "",
        **fields,
    }
    if logo is not None:
        data["logo"] = (io.BytesIO(logo), "logo.png")
    return client.post("/admin/lists/news/brand", data=data, content_type="multipart/form-data")


def test_admin_page_sets_the_brand_and_audits_it(
    app: Flask, admin_client: FlaskClient, mint_links: Callable[..., list[MintedLinks]]
) -> None:
    assert "/admin/lists/news/brand" in admin_client.get("/admin/lists/news").get_data(as_text=True)
    big = png(width=300, height=200)
    saved = post_brand(
        admin_client, logo=big, color=ACCENT, sender_name="Example Books",
        privacy_url="https://books.example/privacy",
    )  # fmt: skip
    assert saved.status_code == 303, saved.get_data(as_text=True)
    assert "Brand saved" in admin_client.get(saved.headers["Location"]).get_data(as_text=True)
    (links,) = mint_links(["ann@example.com"])
    recipient = app.test_client()
    html = recipient.get(links.preferences).get_data(as_text=True)
    src = only(r'<img class="brand-logo" src="([^"]+)"', html)
    assert recipient.get(src).data == big
    with transaction(app) as session:
        entry = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "list.brand")
        ).one()
    assert entry.actor_kind == "admin"
    assert entry.detail is not None
    assert set(entry.detail["changed"]) == {"color", "sender_name", "privacy_url", "logo"}


@pytest.mark.parametrize(
    ("fields", "logo", "message"),
    [
        ({"color": "#ffff00"}, None, "contrast ratio of 1."),
        ({"color": "#cccccc"}, None, "contrast ratio of 1."),
        ({"color": "blue"}, None, "#RRGGBB"),
        ({}, b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG logos are refused"),
        ({}, b"plain text pretending to be a PNG", "not a PNG, JPEG, GIF or WebP"),
        ({"privacy_url": "javascript:alert(1)"}, None, "absolute http"),
    ],
)
def test_admin_page_refuses_bad_values(
    app: Flask, admin_client: FlaskClient, fields: dict[str, str], logo: bytes | None, message: str
) -> None:
    refused = post_brand(admin_client, logo=logo, **fields)
    assert refused.status_code == 400
    assert message in refused.get_data(as_text=True)
    with transaction(app) as session:
        stored = session.scalars(sa.select(MailingList)).one()
        assert stored.brand_color is None and stored.brand_privacy_url is None
        assert session.scalar(sa.select(sa.func.count()).select_from(ListLogo)) == 0


def test_admin_form_needs_its_csrf_token(admin_client: FlaskClient) -> None:
    response = admin_client.post("/admin/lists/news/brand", data={"color": ACCENT})
    assert response.status_code == 400


# ---- in a real browser -------------------------------------------------------------------


@pytest.mark.browser
def test_logo_loads_and_accent_applies_under_the_csp(
    branded: Flask,
    live_server: str,
    page: Any,
    mint_links: Callable[..., list[MintedLinks]],
) -> None:
    (links,) = mint_links(["ann@example.com"])
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(live_server + links.unsubscribe)
    logo = page.locator("img.brand-logo")
    logo.wait_for()
    page.wait_for_load_state("load")
    assert logo.evaluate("img => img.complete && img.naturalWidth") == 4
    button = page.locator("button.primary").first
    colour = button.evaluate("b => getComputedStyle(b).backgroundColor")
    assert colour == "rgb(91, 42, 134)"  # #5b2a86
    assert violations == []
