"""unsubsvc erase and unsubsvc export: one address's data rights."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
