"""unsubsvc import and unsubsvc export-list: subscribers and suppressions in and out as CSV."""

from __future__ import annotations

import csv
import getpass
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import click

from unsubsvc.cli.common import now, runtime, session, unit_of_work
from unsubsvc.core import csv_import, tables
from unsubsvc.core.csv_import import FileRefused, Layout, RowError
from unsubsvc.services import audit, importing, list_export
from unsubsvc.services import lists as list_service

#: Errors printed on stderr; ``--errors FILE`` gets them all.
SHOWN_ERRORS = 50
#: Without a terminal (a log, a pipe) the bar is hidden: a line every this many rows instead.
PROGRESS_EVERY = 25_000
#: Bytes read to decide whether a file is text at all.
SAMPLE = 64 * 1024

T = TypeVar("T")


def _actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without one)
        return "unknown"


def _progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """Yield ``items`` while showing how many were read: a bar on a terminal, lines elsewhere."""
    stderr = sys.stderr
    if stderr.isatty():
        with click.progressbar(items, length=total, label=label, file=stderr, show_pos=True) as bar:
            yield from bar
        return
    click.echo(label, err=True)
    count = 0
    for count, item in enumerate(items, start=1):
        if count % PROGRESS_EVERY == 0:
            click.echo(f"  {count} rows read", err=True)
        yield item
    click.echo(f"  {count} rows read", err=True)


def _open(path: Path) -> tuple[IO[str], int]:
    """Open a CSV export for reading, after refusing what is too big or not text.

    Returns the text stream (UTF-8, a byte-order mark dropped, line ends kept for
    the csv module as its docs require) and the number of lines, for the bar.
    """
    size = path.stat().st_size
    with path.open("rb") as raw:
        csv_import.check_sample(raw.read(SAMPLE), size)
        raw.seek(0)
        lines = sum(block.count(b"\n") for block in iter(lambda: raw.read(1 << 20), b""))
    return path.open(encoding="utf-8-sig", newline=""), lines


def _write_errors(path: Path, errors: Iterable[RowError]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "error"])
        for error in errors:
            writer.writerow([error.line, tables.csv_cell(error.message)])


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "list_name", required=True, help="The list to import into.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; change nothing.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *(layout.value for layout in Layout)]),
    default="auto",
    show_default=True,
    help="Whose export the file is; auto reads it from the header row.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the good rows even if some are bad (default: any bad row stops the import).",
)
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every row error to this CSV file (line,error).",
)
@unit_of_work
def import_command(
    file: Path,
    list_name: str,
    dry_run: bool,
    fmt: str,
    skip_invalid: bool,
    errors_path: Path | None,
) -> None:
    """Import subscribers and suppressions from a CSV export into a list, all rows or none.

    Reads Mailchimp, SendGrid and listmonk exports and plain email,status,
    unsubscribed_at,topics files. An import never resubscribes anyone; erased
    addresses are skipped. Exits 1 when rows are bad and nothing was imported.
    """
    db = session()
    mailing_list = list_service.get_list(db, list_name)
    text, lines = _open(file)
    try:
        with text:
            reader = csv_import.Reader(text, None if fmt == "auto" else Layout(fmt))
            total = max(lines - reader.header_line + 1, 0)
            collected = csv_import.collect(_progress(reader, total, f"Reading {file.name}"))
    except UnicodeDecodeError as exc:
        raise FileRefused(f"the file is not UTF-8 text ({exc.reason})") from None
    report = importing.import_rows(
        db,
        runtime().keyring,
        mailing_list,
        collected.rows,
        now=now(),
        layout=reader.detected.layout.value,
        read=collected.read,
        errors=collected.errors,
        duplicates=collected.duplicates,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
    )
    mode = "dry run, nothing changed" if dry_run else "imported" if report.applied else "refused"
    click.echo(f"layout: {reader.detected.description} ({mode})")
    for name, value in report.counts().items():
        click.echo(f"{name}: {value}")
    for error in report.errors[:SHOWN_ERRORS]:
        click.echo(f"line {error.line}: {error.message}", err=True)
    if len(report.errors) > SHOWN_ERRORS:
        more = len(report.errors) - SHOWN_ERRORS
        hint = f" (all in {errors_path})" if errors_path else " (--errors FILE lists them all)"
        click.echo(f"... and {more} more{hint}", err=True)
    if errors_path is not None:
        _write_errors(errors_path, report.errors)
    if report.applied:
        audit.record(
            db,
            now=now(),
            actor_kind=audit.CLI,
            actor=_actor(),
            action="list.import",
            target=mailing_list.name,
            client="cli",
            detail={"layout": report.layout, **report.counts()},
        )
    elif report.errors:
        raise click.ClickException(
            f"{len(report.errors)} bad rows; nothing was imported"
            + ("" if dry_run else " (fix them, or use --skip-invalid)")
        )


@click.command("export-list")
@click.argument("name")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option("--events", is_flag=True, help="Export the list's event log instead of its states.")
@unit_of_work
def export_list_command(name: str, fmt: str, events: bool) -> None:
    """Write a list's subscribers (or, with --events, its events) to stdout, streamed.

    The CSV of states is in the plain layout: unsubsvc import reads it back.
    """
    db = session()
    mailing_list = list_service.get_list(db, name)
    out = sys.stdout
    rows: Iterator[object]
    row_type: type
    if events:
        rows, row_type, key = list_export.events(db, mailing_list), list_export.EventRow, "events"
    else:
        rows, row_type = list_export.members(db, mailing_list), list_export.MemberRow
        key = "subscribers"
    names = tables.columns(row_type)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            values = tables.cells(row)
            if "detail" in values:
                values["detail"] = json.dumps(values["detail"], separators=(",", ":"))
            writer.writerow([tables.csv_cell(values[n]) for n in names])
            count += 1
    else:
        out.write(f'{{"list": {json.dumps(mailing_list.name)}, "{key}": [')
        for row in rows:
            out.write(("," if count else "") + "\n  " + json.dumps(tables.record(row)))
            count += 1
        out.write("\n]}\n")
    audit.record(
        db,
        now=now(),
        actor_kind=audit.CLI,
        actor=_actor(),
        action="list.export",
        target=mailing_list.name,
        client="cli",
        detail={"rows": count, "events": events, "format": fmt},
    )


COMMANDS: tuple[click.Command, ...] = (import_command, export_list_command)
