"""unsubsvc: clean, instant, measurable unsubscribes for bulk senders.

The package root stays free of Flask so that ``unsubsvc.core`` can be used as
a plain library; ``create_app`` is loaded only when someone asks for it
(``flask --app unsubsvc`` does, and gets the ``unsubsvc`` commands too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app() -> Flask:
    """Build the web app with the ``unsubsvc`` commands on its ``flask`` CLI."""
    from unsubsvc.cli import cli
    from unsubsvc.web.app import create_app as create_web_app

    app = create_web_app()
    for command in cli.commands.values():
        app.cli.add_command(command)
    return app
