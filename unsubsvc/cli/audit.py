"""unsubsvc audit: read and export the audit log."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
