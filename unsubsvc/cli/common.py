"""What every command shares: the runtime, one unit of work, and error reporting.

The runtime (settings, engine, clock, minter) is built on first use, so
``--help`` and commands that need no database work whatever the configuration.
A command decorated with ``unit_of_work`` commits its session once, when it
returns, and rolls it back if it fails.
"""

from __future__ import annotations

import functools
import getpass
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.runtime import Runtime, build_runtime
from unsubsvc.services import audit
from unsubsvc.services.links import LinkMinter
from unsubsvc.settings import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

_SESSION = "unsubsvc.session"


def runtime() -> Runtime:
    """Return the runtime of this invocation; a bad configuration is one ``Error:`` line."""
    try:
        return configured_runtime()
    except (ConfigError, UnsubsvcError) as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def configured_runtime() -> Runtime:
    """Return the runtime passed as ``obj``, else one built from the settings (once per run).

    Raises ConfigError (or DatabaseUrlError) when the configuration cannot be used.
    """
    root = click.get_current_context().find_root()
    if isinstance(root.obj, Runtime):
        return root.obj
    built: Runtime | None = root.meta.get("unsubsvc.runtime")
    if built is None:
        built = build_runtime()
        root.meta["unsubsvc.runtime"] = built
        root.call_on_close(built.dispose)
    return built


def session() -> Session:
    """Return the command's session (opened on first use, committed by ``unit_of_work``)."""
    meta = click.get_current_context().meta
    current: Session | None = meta.get(_SESSION)
    if current is None:
        current = runtime().session_factory()
        audit.watch_writes(current)  # read-only commands are not audited
        meta[_SESSION] = current
    return current


def minter() -> LinkMinter:
    """Return the runtime's link minter."""
    return runtime().minter


def now() -> datetime:
    """Return the runtime's notion of now."""
    return runtime().now()


def unit_of_work(func: F) -> F:
    """Run a command as one transaction, and report its errors as ``Error: message`` (exit 1).

    The session the command used is committed when it returns and rolled back
    when it raises; domain errors and an unready database become one line each,
    never a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        meta = click.get_current_context().meta
        try:
            result = func(*args, **kwargs)
            current: Session | None = meta.get(_SESSION)
            if current is not None:
                if audit.wrote(current):
                    _record_command(current)
                current.commit()
            return result
        except UnsubsvcError as exc:
            raise click.ClickException(str(exc)) from exc
        except (OperationalError, ProgrammingError) as exc:
            raise click.ClickException(database_problem(exc)) from exc
        finally:
            opened: Session | None = meta.pop(_SESSION, None)
            if opened is not None:
                opened.close()  # rolls back whatever was not committed

    return wrapper  # type: ignore[return-value]


def _record_command(current: Session) -> None:
    """Append the command that changed something to the audit log; it commits with the change."""
    context = click.get_current_context()
    names = []
    step: click.Context | None = context
    while step is not None and step.parent is not None:  # the root is the program itself
        names.append(step.info_name or step.command.name or "?")
        step = step.parent
    try:
        user: str | None = getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        user = None
    audit.record_command(
        current,
        now=now(),
        path=" ".join(reversed(names)),
        parameters=context.params,
        user=user,
        host=socket.gethostname(),
    )


def database_problem(exc: OperationalError | ProgrammingError) -> str:
    """Say in one line why the database could not be used, and what to do."""
    detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    lowered = detail.lower()
    if "does not exist" in lowered and "database" in lowered:
        return (
            f"the database does not exist ({detail}); "
            "create it (createdb) or fix UNSUBSVC_DATABASE_URL"
        )
    if "unable to open database file" in lowered or "readonly database" in lowered:
        return (
            f"cannot open the SQLite database ({detail}); "
            "its folder must exist and be writable (see UNSUBSVC_DATABASE_URL)"
        )
    if "connection" in lowered or "could not" in lowered or "timeout" in lowered:
        return f"cannot reach the database ({detail}); check UNSUBSVC_DATABASE_URL"
    return f"the database is not ready ({detail}); run 'unsubsvc init' first"
