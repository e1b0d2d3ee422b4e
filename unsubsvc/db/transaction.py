"""One transaction per use case: commit what a block did, or roll all of it back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def atomic(session: Session, *, commit: bool = True) -> Iterator[None]:
    """Commit the block's changes when it ends (unless ``commit=False``); roll back if it raises.

    With ``commit=False`` the block joins a transaction its caller will commit.
    """
    try:
        yield
        if commit:
            session.commit()
    except BaseException:
        session.rollback()
        raise
