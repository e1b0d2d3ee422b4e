"""Fixtures for the functional tests that need many recipients' links at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask

from tests.helpers import path_of
from unsubsvc.services.apikeys import create_key
from unsubsvc.web.context import runtime_of


@dataclass(frozen=True)
class MintedLinks:
    """A recipient's two link paths, as the test client requests them."""

    email: str
    unsubscribe: str
    preferences: str


def mint_links_on(
    app: Flask, emails: list[str], list_name: str = "news", campaign: str = "c1"
) -> list[MintedLinks]:
    """Mint links for ``emails`` on ``app`` as a sender does: through the API, in one call."""
    runtime = runtime_of(app)
    with runtime.unit_of_work() as session:
        key = create_key(session, f"minter-{uuid.uuid4().hex[:8]}", now=runtime.now()).secret
    response = app.test_client().post(
        f"/api/v1/lists/{list_name}/headers",
        json={"recipients": [{"email": e} for e in emails], "campaign": campaign},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None
    return [
        MintedLinks(r["email"], path_of(r["unsubscribe_url"]), path_of(r["preferences_url"]))
        for r in response.json["recipients"]
    ]


@pytest.fixture
def mint_links(app: Flask) -> Callable[..., list[MintedLinks]]:
    """Return a function minting links on ``app`` for a list of addresses."""

    def mint(emails: list[str], list_name: str = "news", campaign: str = "c1") -> list[MintedLinks]:
        return mint_links_on(app, emails, list_name, campaign)

    return mint
