"""A client generated from the served document drives the API on a real server.

The document is validated as OpenAPI 3.1 (its ``webhooks`` section included), a
client is generated with openapi-python-client (offline, into ``tmp_path``),
imported, and used end to end, with an address and a campaign that contain ``/``:
the generated code percent-encodes path parameters (``%2F``), and the server
decodes them before routing, as every WSGI server does.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

from tests.conftest import ApiClient

pytestmark = pytest.mark.slow

PACKAGE = "unsubsvc_sender_api_client"
SLASHED = "a/b@example.com"
PLAIN = "c@example.com"
CAMPAIGN = "2026/03 news"


def _generator() -> Path:
    script = Path(sys.executable).parent / "openapi-python-client"
    if not script.exists():
        pytest.skip("openapi-python-client is not installed (pip install -e '.[test]')")
    return script


@pytest.fixture
def generated(live_server: str, tmp_path: Path) -> Iterator[tuple[dict[str, Any], ModuleType]]:
    """The served document and the package generated from it, importable."""
    generator = _generator()
    validator = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator")
    import httpx

    document = httpx.get(f"{live_server}/api/v1/openapi.json", timeout=10).json()
    validator.validate(document)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(document), encoding="utf-8")
    out = tmp_path / "client"
    # The generator formats its output with ruff, which sits beside this interpreter.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(
        [str(generator), "generate", "--path", str(spec), "--output-path", str(out)],
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / PACKAGE / "api").is_dir(), done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield document, importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _call(module: str, **kwargs: Any) -> Any:
    """Call ``sync_detailed`` of ``<package>.api.<module>``; return the response."""
    endpoint = importlib.import_module(f"{PACKAGE}.api.{module}")
    return endpoint.sync_detailed(**kwargs)


def test_document_validates_with_its_webhooks(
    generated: tuple[dict[str, Any], ModuleType],
) -> None:
    document, _ = generated
    assert document["openapi"].startswith("3.1")
    assert {"unsubscribe", "resubscribe", "complaint"} <= set(document["webhooks"])
    names = {p["name"] for p in document["webhooks"]["unsubscribe"]["post"]["parameters"]}
    assert names == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    declared = {tag["name"] for tag in document["tags"]}
    for operations in document["paths"].values():
        for operation in operations.values():
            assert set(operation["tags"]) <= declared


def test_generated_client_drives_the_api(
    app: Flask,
    api: ApiClient,
    live_server: str,
    generated: tuple[dict[str, Any], ModuleType],
) -> None:
    _, package = generated
    models = importlib.import_module(f"{PACKAGE}.models")
    client = package.AuthenticatedClient(base_url=live_server, token=api.key, timeout=10.0)

    created = _call(
        "lists.create_list",
        client=client,
        body=models.ListCreate(name="news", topics=["product"], frequencies=["weekly"]),
    )
    assert created.status_code == 201, created.content
    assert created.parsed.name == "news"

    headers = _call(
        "sending.headers",
        name="news",
        client=client,
        body=models.HeadersIn(
            recipients=[models.RecipientIn(email=SLASHED), models.RecipientIn(email=PLAIN)],
            campaign=CAMPAIGN,
        ),
    )
    assert headers.status_code == 200, headers.content
    assert [h.email for h in headers.parsed.recipients] == [SLASHED, PLAIN]
    assert headers.parsed.recipients[0].list_unsubscribe.startswith("<")

    def eligible() -> list[str]:
        answer = _call(
            "sending.eligibility",
            name="news",
            client=client,
            body=models.EligibilityIn(emails=[SLASHED, PLAIN], transactional=False),
        )
        assert answer.status_code == 200, answer.content
        return list(answer.parsed.eligible)

    assert eligible() == [SLASHED, PLAIN]

    # The generated code sends the address as a%2Fb%40example.com.
    unsubscribed = _call(
        "recipients.unsubscribe",
        name="news",
        email=SLASHED,
        client=client,
        body=models.UnsubscribeIn(campaign=CAMPAIGN),
    )
    assert unsubscribed.status_code == 200, unsubscribed.content
    assert unsubscribed.parsed.changed is True
    assert unsubscribed.parsed.status.email == SLASHED
    assert unsubscribed.parsed.status.subscribed is False

    state = _call("recipients.recipient", name="news", email=SLASHED, client=client)
    assert state.status_code == 200, state.content
    assert state.parsed.subscribed is False
    assert eligible() == [PLAIN]

    delivered = _call(
        "deliveries.deliveries",
        name="news",
        campaign=CAMPAIGN,
        client=client,
        body=models.DeliveryIn(count=2),
    )
    assert delivered.status_code == 201, delivered.content
    assert delivered.parsed.campaign == CAMPAIGN

    # On PostgreSQL a change shows once no older transaction runs in the cluster: poll.
    for _ in range(50):
        feed = _call("suppressions.suppressions", client=client, list_="news")
        assert feed.status_code == 200, feed.content
        if feed.parsed.changes:
            break
        time.sleep(0.1)
    [change] = feed.parsed.changes
    assert (change.email, change.status, change.campaign) == (SLASHED, "unsubscribed", CAMPAIGN)
    assert change.changed_at.tzinfo is not None  # parsed as a date-time, from the document

    resubscribed = _call(
        "recipients.resubscribe",
        name="news",
        email=SLASHED,
        client=client,
        body=models.ResubscribeIn(reason="signed up again on the web form"),
    )
    assert resubscribed.status_code == 200, resubscribed.content
    assert resubscribed.parsed.status.subscribed is True


def test_strict_types_reach_a_generated_client_as_words(
    app: Flask,
    api: ApiClient,
    live_server: str,
    generated: tuple[dict[str, Any], ModuleType],
) -> None:
    import httpx

    _, package = generated
    client = package.AuthenticatedClient(base_url=live_server, token=api.key, timeout=10.0)
    models = importlib.import_module(f"{PACKAGE}.models")
    assert _call("lists.create_list", client=client, body=models.ListCreate(name="news"))
    answer = httpx.post(
        f"{live_server}/api/v1/lists/news/campaigns/c1/deliveries",
        json={"count": 1, "sent_at": 0},
        headers=api.headers,
        timeout=10,
    )
    assert answer.status_code == 422
    assert answer.json()["fields"] == [
        {"field": "sent_at", "message": "must be an ISO 8601 time with a time zone"}
    ]
