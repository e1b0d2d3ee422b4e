"""unsubsvc secret: make keys strong enough for production."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
