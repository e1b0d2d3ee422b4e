"""What every command shares: the session, the minter, the clock, and error reporting."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.services.links import LinkMinter

F = TypeVar("F", bound=Callable[..., Any])


def domain_errors(func: F) -> F:
    """Report domain errors as ``Error: message`` with exit code 1 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UnsubsvcError as exc:
            raise click.ClickException(str(exc)) from exc
        except (OperationalError, ProgrammingError) as exc:
            raise click.ClickException(
                f"the database is not ready ({exc.orig}); run 'unsubsvc init' first"
            ) from exc

    return wrapper  # type: ignore[return-value]


def session() -> Session:
    """Return the command's database session."""
    from unsubsvc.web.extensions import session as current

    return current()


def minter() -> LinkMinter:
    """Return the app's link minter."""
    from unsubsvc.web import context

    return context.minter()


def now() -> datetime:
    """Return the app's notion of now."""
    from unsubsvc.web import context

    return context.now()
