"""A database that is down, never answers or is locked: 503 with Retry-After within 3 s, then heals.

Every page a recipient or sender can reach must say "try again" (503 and
Retry-After), never 500 and never hang, and the same app must serve again as
soon as the database is back, without a restart.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import ApiClient
from tests.helpers import count_events, links_for, make_list, path_of
from unsubsvc.web.context import runtime_of

#: What the issue promises: an answer within 3 s.
LIMIT = 3.0
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Paths:
    """One recipient's URIs and a sender's key, minted while the database was up."""

    unsubscribe: str
    preferences: str
    api_key: str


class TcpProxy:
    """A loopback TCP proxy in front of the database that a test can cut and restore.

    ``mode`` is "forward" (pass bytes both ways), "refuse" (close new connections
    at once and cut the open ones) or "silent" (accept and never answer).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def cut(self, mode: str) -> None:
        """Switch to ``mode``, dropping every open connection."""
        self.mode = mode
        with self._lock:
            for sock in self._open:
                with _quiet():
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            self._open.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.cut("refuse")  # after the accept loop ended: nothing is opened behind it
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            with self._lock:
                self._open.append(client)
            if self.mode == "silent":
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with _quiet():
            while data := source.recv(65536):
                sink.sendall(data)
        with _quiet():
            sink.shutdown(socket.SHUT_WR)


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass


@pytest.fixture
def proxied_app(
    app: Flask, make_app: Callable[..., Flask], api: ApiClient
) -> Iterator[tuple[Flask, TcpProxy, Paths]]:
    """An app whose PostgreSQL connections go through a proxy the test controls."""
    runtime = runtime_of(app)
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to lose; see the locked-database test")
    make_list(app)
    links = links_for(app)
    url = runtime.engine.url
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield (
            make_app(tables=False, database_url=through),
            proxy,
            Paths(path_of(links.unsubscribe_url), path_of(links.preferences_url), api.key),
        )
    finally:
        proxy.close()


def requests_of(paths: Paths) -> list[tuple[str, str, dict[str, object]]]:
    """Every kind of request the issue names: the URI (GET, POST), the center, the API, health."""
    bearer = {"Authorization": f"Bearer {paths.api_key}"}
    return [
        ("GET", paths.unsubscribe, {}),
        ("POST", paths.unsubscribe, {"data": ONE_CLICK}),
        ("GET", paths.preferences, {}),
        ("GET", "/api/v1/suppressions", {"headers": bearer}),
        ("GET", "/healthz", {}),
    ]


def assert_unavailable(client: FlaskClient, paths: Paths) -> None:
    for method, path, options in requests_of(paths):
        started = time.monotonic()
        response = client.open(path, method=method, **options)  # type: ignore[arg-type]
        took = time.monotonic() - started
        label = f"{method} {path.split('/')[1]}"
        assert response.status_code == 503, (label, response.status_code)
        assert int(response.headers["Retry-After"]) > 0, label
        assert took < LIMIT, (label, took)
        if path.startswith("/api/"):
            assert "error" in (response.get_json() or {}), label
        elif path != "/healthz":
            assert response.mimetype == "text/html", label
            assert "try again" in response.get_data(as_text=True), label


@pytest.mark.parametrize("mode", ["refuse", "silent"])
def test_a_database_that_refuses_or_never_answers_gives_503_then_heals(
    proxied_app: tuple[Flask, TcpProxy, Paths], mode: str
) -> None:
    app, proxy, paths = proxied_app
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not re-raise
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # a pooled connection exists now

    proxy.cut(mode)
    assert_unavailable(client, paths)

    proxy.cut("forward")
    # The same app, no restart: the pool replaces its dead connections.
    assert client.get("/healthz").status_code == 200
    assert client.post(paths.unsubscribe, data=ONE_CLICK).status_code == 200
    assert client.get(paths.preferences).status_code == 200
    assert count_events(app) == 1


def test_a_locked_sqlite_database_gives_503_and_changes_nothing(app: Flask, api: ApiClient) -> None:
    runtime = runtime_of(app)
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the PostgreSQL cases are above")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    make_list(app)
    unsubscribe = path_of(links_for(app).unsubscribe_url)
    client = app.test_client()
    path = urlsplit(runtime.settings.database_url.replace("sqlite:///", "file:///")).path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a writer that does not let go
    try:
        started = time.monotonic()
        response = client.post(unsubscribe, data=ONE_CLICK)
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert time.monotonic() - started < LIMIT
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert count_events(app) == 0
    assert client.post(unsubscribe, data=ONE_CLICK).status_code == 200
    assert count_events(app) == 1


def test_an_error_that_is_not_the_database_is_still_a_500(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """503 means "try again"; a bug must not hide behind it."""
    app = make_app({"PROPAGATE_EXCEPTIONS": False})
    make_list(app)
    unsubscribe = path_of(links_for(app).unsubscribe_url)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise sa.exc.IntegrityError("INSERT", {}, Exception("a bug"))

    monkeypatch.setattr("unsubsvc.services.unsubscribe.unsubscribe", broken)
    response = app.test_client().post(unsubscribe, data=ONE_CLICK)
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
