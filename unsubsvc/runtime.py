"""The application runtime: what the web app and the CLI share, built once from Settings.

Both ``unsubsvc.web`` and ``unsubsvc.cli`` import this module, and neither
imports the other for it: settings, the engine, the session factory, the
clock and the link minter are made here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from unsubsvc.core.keys import Keyring
from unsubsvc.core.tokens import TokenSigner
from unsubsvc.db.engine import make_engine
from unsubsvc.db.writer_gate import WriterGate
from unsubsvc.services.links import LinkMinter
from unsubsvc.settings import Settings, load_settings

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Return the current time in UTC (the clock outside tests)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    """Settings and the long-lived objects built from them."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    minter: LinkMinter
    #: Keys derived per purpose from the settings' secrets (``core.keys``).
    keyring: Keyring
    clock: Clock = utcnow
    #: Requests that write to SQLite take turns here (``web.context``, ``db.writer_gate``).
    sqlite_writers: WriterGate = field(default_factory=lambda: WriterGate(None), compare=False)

    def now(self) -> datetime:
        """Return this runtime's notion of now (tests inject a fixed clock)."""
        return self.clock()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Yield a session; commit what the block did when it ends, roll it all back if it raises.

        This is where the CLI, the webhook deliverer and the tests commit; a
        request commits through the same session factory in ``unsubsvc.web.context``.
        """
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def with_base_url(self, base_url: str) -> Runtime:
        """Return a runtime whose links point at ``base_url`` (same engine and clock)."""
        settings = replace(self.settings, base_url=base_url.rstrip("/"))
        return replace(self, settings=settings, minter=make_minter(settings, self.keyring))

    def dispose(self) -> None:
        """Close the engine's pooled connections (before a fork, or at the end of a test)."""
        self.engine.dispose()


def make_minter(settings: Settings, keyring: Keyring) -> LinkMinter:
    """Return the link minter the settings describe, signing with ``keyring``'s link keys."""
    signer = TokenSigner(keyring, max_age=settings.token_max_age)
    return LinkMinter(signer=signer, base_url=settings.base_url, mailto=settings.mailto)


def build_runtime(settings: Settings | None = None, *, clock: Clock | None = None) -> Runtime:
    """Build the runtime from ``settings`` (default: read from the environment)."""
    settings = load_settings() if settings is None else settings
    engine = make_engine(settings.database_url, timeout=settings.database_timeout)
    # Objects stay readable after the commit: nothing is reloaded to render an answer.
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    database = engine.url.database
    on_disk = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
    gate = WriterGate(Path(database) if on_disk and database else None)
    keyring = Keyring(settings.secret_keys)
    return Runtime(
        settings,
        engine,
        factory,
        make_minter(settings, keyring),
        keyring,
        clock or utcnow,
        gate,
    )
