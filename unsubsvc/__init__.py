"""unsubsvc: clean, instant, measurable unsubscribes for bulk senders.

The package root stays free of Flask so that ``unsubsvc.core`` can be used as
a plain library; ``create_app`` is loaded only when someone asks for it
(``flask --app unsubsvc`` does).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from unsubsvc.web.app import create_app

        return create_app
    raise AttributeError(f"module 'unsubsvc' has no attribute {name!r}")
