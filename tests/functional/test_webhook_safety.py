"""Webhooks cannot be pointed into the sender's network, are bounded, and keep secrets sealed."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from tests.certificates import self_signed
from tests.conftest import ApiClient, FakeClock
from tests.functional.test_webhooks import (
    ANN,
    Receiver,
    add_hook,
    attempts,
    deliver_from,
    one_click,
    outbox,
)
from tests.helpers import CommandRunner, make_list, transaction
from unsubsvc.core.secret_box import SecretBox, is_plaintext
from unsubsvc.core.webhooks import secret_key, standard_form, verify
from unsubsvc.db.models import Webhook
from unsubsvc.services import webhooks as svc
from unsubsvc.services.webhooks import DeliveryStats
from unsubsvc.web.context import runtime_of

#: Production refuses weak keys: a random one of 384 bits.
STRONG_KEY = secrets.token_urlsafe(48)
#: A name the tests resolve themselves (``FakeDns``), to any address they like.
HOST = "hooks.test"
PUBLIC = "93.184.215.14"


class FakeDns:
    """``socket.getaddrinfo`` answering ``answers`` for ``names``; the real one for the rest."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.names = {HOST}
        self.answers: list[str] | None = [PUBLIC]
        self.lookups = 0

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in self.names:
            return self.real(host, port, *args, **kwargs)
        self.lookups += 1
        if self.answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (
                family[6 if ":" in a else 4],
                socket.SOCK_STREAM,
                6,
                "",
                (a, int(port)) if ":" not in a else (a, int(port), 0, 0),
            )
            for a in self.answers
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    # The deliverer's module resolves through the socket module it imported.
    monkeypatch.setattr("unsubsvc.services.webhooks.socket.getaddrinfo", fake)
    return fake


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """A production app: https only, no private addresses."""
    return make_app(
        env="production", secret_keys=(STRONG_KEY,), base_url="https://unsub.example.com"
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver.running() as server:
        yield server


def stored_hooks(app: Flask) -> list[tuple[str, str]]:
    """Return every endpoint's (url, secret column) as stored."""
    with transaction(app) as session:
        return [(h.url, h.secret) for h in session.scalars(sa.select(Webhook).order_by(Webhook.id))]


# --- registration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:{port}/hook", "https"),
        ("https://127.0.0.1:{port}/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "https"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://10.0.0.5/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://100.64.0.1/hook", "CGNAT"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://localhost/hook", "not a public host"),
        ("https://metadata.google.internal/computeMetadata/v1/", "not a public host"),
        ("https://2130706433/hook", "loopback"),  # 127.0.0.1 as one decimal number
        ("http://hooks.example.com/hook", "https"),
    ],
    ids=[
        "http-loopback",
        "https-loopback",
        "http-metadata",
        "https-metadata",
        "rfc1918-10",
        "rfc1918-192",
        "ipv6-loopback",
        "ipv4-mapped",
        "cgnat",
        "unspecified",
        "localhost",
        "gcp-metadata-name",
        "decimal-ip",
        "plain-http",
    ],
)
def test_production_refuses_webhooks_into_the_network_by_api_and_cli(
    app: Flask, api: ApiClient, runner: CommandRunner, receiver: Receiver, url: str, message: str
) -> None:
    url = url.format(port=receiver.port)
    answer = api.post("/webhooks", {"url": url})
    assert answer.status_code == 400, answer.json
    assert message in answer.json["error"]
    assert "secret" not in answer.json

    result = runner.invoke(args=["webhooks", "add", url])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert "whsec_" not in result.output

    assert stored_hooks(app) == []
    assert receiver.requests == 0


@pytest.mark.parametrize(
    "answers", [["10.0.0.7"], [PUBLIC, "127.0.0.1"], ["fd00:ec2::254"]], ids=str
)
def test_a_name_resolving_to_any_private_address_is_refused(
    app: Flask, api: ApiClient, runner: CommandRunner, dns: FakeDns, answers: list[str]
) -> None:
    dns.answers = answers
    answer = api.post("/webhooks", {"url": f"https://{HOST}/hook"})
    assert answer.status_code == 400
    assert "not a public one" in answer.json["error"]
    assert runner.invoke(args=["webhooks", "add", f"https://{HOST}/hook"]).exit_code == 1
    assert stored_hooks(app) == []


@pytest.mark.parametrize("answers", [[PUBLIC], None], ids=["public", "does-not-resolve"])
def test_a_public_or_unresolvable_name_is_accepted(
    app: Flask, api: ApiClient, dns: FakeDns, answers: list[str] | None
) -> None:
    """Unresolvable is accepted: every delivery resolves and checks again before it connects."""
    dns.answers = answers
    answer = api.post("/webhooks", {"url": f"https://{HOST}/hook"})
    assert answer.status_code == 201, answer.json
    assert dns.lookups == 1
    assert [url for url, _ in stored_hooks(app)] == [f"https://{HOST}/hook"]


def test_allow_private_lets_tests_and_labs_use_loopback(
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    monkeypatch.setenv("UNSUBSVC_WEBHOOK_ALLOW_PRIVATE", "1")
    app = make_app()
    assert runtime_of(app).settings.webhook_allow_private
    for url in (receiver.url, "http://169.254.169.254/", "http://localhost:9/"):
        added = CommandRunner(runtime_of(app)).invoke(args=["webhooks", "add", url])
        assert added.exit_code == 0, added.output
    assert len(stored_hooks(app)) == 3


def test_production_with_allow_private_still_needs_https(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = make_app(env="production", secret_keys=(STRONG_KEY,), webhook_allow_private=True)
    runner = CommandRunner(runtime_of(app))
    assert runner.invoke(args=["webhooks", "add", receiver.url]).exit_code == 1
    added = runner.invoke(args=["webhooks", "add", f"https://127.0.0.1:{receiver.port}/"])
    assert added.exit_code == 0, added.output


# --- the endpoint limit -------------------------------------------------------------------------


def test_at_most_the_configured_number_of_active_endpoints(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    from unsubsvc.services.apikeys import create_key

    app = make_app(webhook_max_endpoints=2, webhook_allow_private=True)
    with transaction(app) as session:
        key = create_key(session, "sender", now=clock.now).secret
    api = ApiClient(app.test_client(), key)
    runner = CommandRunner(runtime_of(app))
    first = api.post("/webhooks", {"url": "http://127.0.0.1:9/a"})
    assert first.status_code == 201
    assert runner.invoke(args=["webhooks", "add", "http://127.0.0.1:9/b"]).exit_code == 0

    refused = api.post("/webhooks", {"url": "http://127.0.0.1:9/c"})
    assert refused.status_code == 409
    assert "UNSUBSVC_WEBHOOK_MAX_ENDPOINTS=2" in refused.json["error"]
    cli = runner.invoke(args=["webhooks", "add", "http://127.0.0.1:9/c"])
    assert cli.exit_code == 1 and "disable one first" in cli.output
    assert len(stored_hooks(app)) == 2

    # Disabled endpoints do not count.
    assert api.client.delete(f"/api/v1/webhooks/{first.json['id']}", headers=api.headers)
    assert api.post("/webhooks", {"url": "http://127.0.0.1:9/c"}).status_code == 201


# --- secrets at rest ----------------------------------------------------------------------------


def test_secrets_are_stored_encrypted_and_deliveries_still_verify(
    make_app: Callable[..., Flask], clock: FakeClock, receiver: Receiver
) -> None:
    app = make_app(webhook_allow_private=True)
    make_list(app)
    _, secret = add_hook(app, receiver.url)
    [(_, column)] = stored_hooks(app)
    assert secret.startswith("whsec_")
    assert secret not in column and secret.removeprefix("whsec_") not in column
    assert not is_plaintext(column)

    one_click(app, ANN)
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)
    [got] = receiver.received
    assert verify(secret, got.header_dict, got.body, now=int(clock.now.timestamp()))


def test_init_encrypts_secrets_stored_in_plaintext(
    make_app: Callable[..., Flask], clock: FakeClock, receiver: Receiver
) -> None:
    """Rows from before encryption hold ``whsec_...``: they still sign, and init seals them.

    Such a secret was made by the old generator (``whsec_`` + ``secrets.token_urlsafe(32)``,
    URL-safe base64): it signs with its 32 random bytes, which is what a Standard
    Webhooks library reads from its ``standard_form``.
    """
    app = make_app(tables=False, webhook_allow_private=True)
    runner = CommandRunner(runtime_of(app))
    assert runner.invoke(args=["init"]).exit_code == 0
    make_list(app)
    legacy = "whsec_" + secrets.token_urlsafe(32)
    with transaction(app) as session:
        session.add(Webhook(url=receiver.url, secret=legacy, created_at=clock.now))
    one_click(app, ANN)
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)  # read as is

    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "1 webhook secrets encrypted" in result.stderr
    [(_, column)] = stored_hooks(app)
    assert not is_plaintext(column) and legacy not in column
    again = runner.invoke(args=["init"])
    assert "webhook secrets" not in again.stderr  # nothing left to do
    assert stored_hooks(app) == [(receiver.url, column)]

    one_click(app, "bob@example.com")
    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)
    got = receiver.received[-1]
    at = int(clock.now.timestamp())
    assert verify(legacy, got.header_dict, got.body, now=at)
    assert verify(standard_form(legacy), got.header_dict, got.body, now=at)
    assert secret_key(legacy) == base64.urlsafe_b64decode(legacy.removeprefix("whsec_") + "=")


def test_init_reseals_under_the_newest_key_after_a_rotation(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    old, new = STRONG_KEY, secrets.token_urlsafe(48)
    app = make_app(secret_keys=(old,), webhook_allow_private=True)
    _, secret = add_hook(app, "http://127.0.0.1:9/")
    [(_, under_old)] = stored_hooks(app)

    rotated = make_app(tables=False, secret_keys=(new, old))
    keyring = runtime_of(rotated).keyring
    with transaction(rotated) as session:
        assert svc.encrypt_stored_secrets(session, keyring) == svc.ResealStats(1, 0)
    with transaction(rotated) as session:
        assert svc.encrypt_stored_secrets(session, keyring) == svc.ResealStats(0, 0)
    [(_, under_new)] = stored_hooks(rotated)
    assert under_new != under_old
    # The old key can be dropped now; a secret no key opens is counted, not lost.
    only_new = runtime_of(make_app(tables=False, secret_keys=(new,))).keyring
    assert SecretBox.from_keyring(only_new).open(under_new) == secret
    with transaction(app) as session:
        session.add(Webhook(url="http://127.0.0.1:9/", secret=under_old, created_at=clock.now))
    with transaction(rotated) as session:
        assert svc.encrypt_stored_secrets(session, only_new) == svc.ResealStats(0, 1)


# --- delivery time: DNS rebinding and pinning ---------------------------------------------------


@pytest.fixture
def development(make_app: Callable[..., Flask]) -> Flask:
    """http allowed (development), private addresses not."""
    return make_app()


def test_a_name_that_turns_private_after_registration_is_not_contacted(
    development: Flask, clock: FakeClock, receiver: Receiver, dns: FakeDns
) -> None:
    """DNS rebinding: public when registered, 127.0.0.1 when delivering: no request is made."""
    app = development
    make_list(app)
    url = f"http://{HOST}:{receiver.port}/hook"
    add_hook(app, url)  # resolves to PUBLIC now
    one_click(app, ANN)
    dns.answers = ["127.0.0.1"]

    stats = deliver_from(app, clock)

    assert stats == DeliveryStats(attempted=1, failed=1)
    assert receiver.requests == 0
    [row] = outbox(app)
    assert row.delivered_at is None and row.attempts == 1
    assert row.next_attempt_at > clock.now  # retried later, as any failed delivery
    [(_, status, error)] = attempts(app, row.id)
    assert status is None
    assert error is not None and error.startswith("RefusedDestination")
    assert "loopback" in error


def test_delivery_connects_to_the_address_it_checked_with_the_hosts_name(
    make_app: Callable[..., Flask], clock: FakeClock, receiver: Receiver, dns: FakeDns
) -> None:
    """One lookup per POST, and the connection goes to its answer (no second lookup to race)."""
    app = make_app(webhook_allow_private=True)
    dns.answers = ["127.0.0.1"]
    make_list(app)
    add_hook(app, f"http://{HOST}:{receiver.port}/hook?x=1")
    one_click(app, ANN)
    dns.lookups = 0

    assert deliver_from(app, clock) == DeliveryStats(attempted=1, delivered=1)

    assert dns.lookups == 1
    [got] = receiver.received
    assert got.headers["Host"] == f"{HOST}:{receiver.port}"


# --- https: the certificate is checked against the name, at the pinned address ------------------


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """Write a self-signed certificate for ``name`` and its key; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, name, names=[x509.DNSName(name)], ca=True)
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsReceiver:
    """An HTTPS endpoint on 127.0.0.1 with a certificate for ``HOST``; records SNI names."""

    def __init__(self, tmp_path: Path) -> None:
        self.cert, key = _certificate(tmp_path, HOST)
        self.server_names: list[str | None] = []
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)

        def sni(sock: Any, name: str | None, ctx: Any) -> None:
            receiver.server_names.append(name)

        context.sni_callback = sni
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsReceiver]:
    server = TlsReceiver(tmp_path)
    trusting = ssl.create_default_context(cafile=str(server.cert))
    monkeypatch.setattr("unsubsvc.services.webhooks.tls_context", lambda: trusting)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "delivered"), [(HOST, True), ("other.test", False)], ids=["right-name", "wrong-name"]
)
def test_https_checks_the_certificate_against_the_name_not_the_address(
    make_app: Callable[..., Flask],
    clock: FakeClock,
    tls: TlsReceiver,
    dns: FakeDns,
    name: str,
    delivered: bool,
) -> None:
    app = make_app(webhook_allow_private=True)
    dns.names.add("other.test")  # both names lead to the test server on 127.0.0.1
    dns.answers = ["127.0.0.1"]
    make_list(app)
    add_hook(app, f"https://{name}:{tls.port}/hook")
    one_click(app, ANN)

    stats = deliver_from(app, clock)

    assert tls.server_names[-1:] == [name]  # SNI is the name, though we connected to an address
    if delivered:
        assert stats == DeliveryStats(attempted=1, delivered=1) and tls.posts == 1
    else:
        assert stats == DeliveryStats(attempted=1, failed=1) and tls.posts == 0
        [row] = outbox(app)
        assert row.last_error is not None and "Hostname mismatch" in row.last_error


def test_the_api_answer_of_a_created_webhook_shows_the_secret_once(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    from unsubsvc.services.apikeys import create_key

    app = make_app(webhook_allow_private=True)
    with transaction(app) as session:
        key = create_key(session, "sender", now=clock.now).secret
    api = ApiClient(app.test_client(), key)
    created = api.post("/webhooks", {"url": "http://127.0.0.1:9/a"})
    assert created.json["secret"].startswith("whsec_")
    listed = json.dumps(api.get("/webhooks").json)
    assert created.json["secret"] not in listed
    assert stored_hooks(app)[0][1] not in listed
