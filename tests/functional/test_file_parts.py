"""A file part where a form expects text answers 400 and changes nothing, on every form.

Werkzeug parses a multipart part with a filename into ``request.files``; WTForms
would hand that FileStorage to a text field and fail with a 500.
"""

from __future__ import annotations

import io
import string
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FakeClock
from tests.functional.conftest import MintedLinks
from tests.helpers import csrf_token, make_list, snapshot
from unsubsvc.services.admin_users import create_admin
from unsubsvc.web.context import runtime_of
from unsubsvc.web.hygiene import FILE_MESSAGE


@dataclass(frozen=True)
class Form:
    """A form as a browser posts it: where, which text fields, and the page holding its token."""

    action: str
    fields: dict[str, str]
    page: str | None  # None: no CSRF token (the signed token in the path is the credential)


FORMS = {
    "admin-login": Form(
        "/admin/login",
        {"email": "ops@example.com", "password": "a long password 1"},
        "/admin/login",
    ),
    "save": Form("{p}", {"frequency": "monthly", "topics": "product", "pause": "1m"}, None),
    "unsubscribe": Form("{p}/unsubscribe", {"scope": "list"}, None),
    "undo": Form("{p}/undo", {"undo": "junk", "scope": "list"}, None),
    "resubscribe": Form("{p}/resubscribe", {"scope": "list"}, None),
    "survey": Form("{p}/survey", {"reason": "too_many", "comment": "hi", "scope": "list"}, None),
    "landing-confirm": Form("{u}/confirm", {"submit": "Unsubscribe"}, None),
    "one-click": Form("{u}", {"List-Unsubscribe": "One-Click"}, None),
}

filenames = st.text(string.ascii_letters + string.digits + "._- ", min_size=1, max_size=30)


@pytest.fixture
def links(
    app: Flask, clock: FakeClock, mint_links: Callable[..., list[MintedLinks]]
) -> MintedLinks:
    make_list(app)
    with runtime_of(app).unit_of_work() as session:
        create_admin(session, "ops@example.com", "a long password 1", now=clock.now)
    (minted,) = mint_links(["ann@example.com"])
    return minted


@pytest.mark.parametrize("name", list(FORMS), ids=list(FORMS))
def test_a_file_part_in_any_text_field_is_refused(
    app: Flask, links: MintedLinks, name: str
) -> None:
    form = FORMS[name]
    client = app.test_client()
    action = form.action.format(p=links.preferences, u=links.unsubscribe)
    text: dict[str, str] = dict(form.fields)
    if form.page is not None:
        page = form.page.format(p=links.preferences, u=links.unsubscribe)
        text["csrf_token"] = csrf_token(client.get(page).get_data(as_text=True))
    before = snapshot(app)
    # Each example from its own address: admin sign-in allows one attempt per address at a time.
    addresses = (f"198.51.100.{i}" for i in range(1, 255))

    @given(field=st.sampled_from(sorted(text)), content=st.binary(max_size=600), name=filenames)
    @settings(
        max_examples=6,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    def check(field: str, content: bytes, name: str) -> None:
        data: dict[str, object] = {k: v for k, v in text.items() if k != field}
        data[field] = (io.BytesIO(content), name)
        client.environ_base["REMOTE_ADDR"] = next(addresses)
        response = client.post(action, data=data, content_type="multipart/form-data")
        assert response.status_code == 400, (field, response.status_code)
        assert response.mimetype == "text/html"
        if field != "csrf_token":  # a missing token is refused by the CSRF check first
            assert FILE_MESSAGE.encode() in response.data
        assert snapshot(app) == before

    check()


def test_the_same_forms_as_text_still_work(app: Flask, links: MintedLinks) -> None:
    """The check refuses files, not multipart: a browser's multipart text form is accepted."""
    one_click = FORMS["one-click"]
    response = app.test_client().post(
        links.unsubscribe, data=one_click.fields, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    saved = app.test_client(use_cookies=False).post(
        links.preferences,
        data={"frequency": "monthly", "topics": "product", "pause": "none"},
        content_type="multipart/form-data",
    )
    assert saved.status_code == 303
