"""unsubsvc import and unsubsvc export-list: subscribers and suppressions in and out as CSV."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
