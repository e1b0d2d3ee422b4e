"""Messages: ``sign`` (add the list headers and DKIM-sign), ``keygen`` and ``check``.

``sign`` writes the exact bytes it signed: the message never goes through
Python's ``email`` package, which would re-fold ``List-Unsubscribe`` into an
encoded word (RFC 8058 §3.1 wants the plain value). ``keygen`` and ``check``
need no database.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import mailbox
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import click

from unsubsvc.cli.common import minter, now, runtime, session, unit_of_work
from unsubsvc.core import bulk_signing, dkim_signing
from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.bulk_signing import KeySpec, SigningPlan
from unsubsvc.core.dkim_signing import ALGORITHMS
from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.core.message_check import Status, check_message
from unsubsvc.db.models import MailingList
from unsubsvc.services.batch import MAX_BATCH, Recipient, batch_links
from unsubsvc.services.erasure import AddressErased
from unsubsvc.services.links import RecipientLinks, recipient_links
from unsubsvc.services.lists import get_list


@contextlib.contextmanager
def _reported(prefix: str = "") -> Iterator[None]:
    """Turn a ValueError from the core into ``Error: ...`` with exit code 1."""
    try:
        yield
    except ValueError as exc:
        raise click.ClickException(f"{prefix}{exc}") from exc


#: Below this many messages a process pool costs more than it saves.
_POOL_FROM = 64


@dataclass(frozen=True)
class _Signing:
    """The list and keys every message of one run is signed with."""

    mailing_list: MailingList
    domain: str
    keys: tuple[KeySpec, ...]
    campaign: str | None

    @property
    def plan(self) -> SigningPlan:
        return SigningPlan(self.domain, self.keys)

    def with_headers(
        self,
        message: bytes,
        headers: Sequence[tuple[str, str]],
        mailing_list: MailingList | None = None,
    ) -> bytes:
        """Return ``message`` as CRLF with the recipient's list headers (and List-Id) on top."""
        named = mailing_list or self.mailing_list
        added = list(headers)
        if not dkim_signing.header_values(message, dkim_signing.LIST_ID):
            # RFC 2919: one List-Id per message; a message that names its list keeps it.
            added.insert(
                0, dkim_signing.list_id_header(named.display_name, named.name, self.domain)
            )
        return dkim_signing.add_headers(message, added)

    def sign(self, message: bytes, address: str) -> bytes:
        """Return ``message`` with the recipient's headers and every signature added."""
        links = recipient_links(
            session(),
            minter(),
            self.mailing_list,
            address,
            now=now(),
            campaign=self.campaign,
            keyring=runtime().keyring,
        )
        return dkim_signing.sign_message(
            self.with_headers(message, links.headers), self.plan.signers()
        )

    def recipients(
        self,
        messages: Iterable[bytes],
        keys: Sequence[str] = (),
        rows: Mapping[str, bulk_signing.RecipientRow] | None = None,
    ) -> list[tuple[MailingList, Recipient]]:
        """Return each message's list and recipient, checking every message first.

        The recipient is the first To: address unless ``rows`` (the
        --recipients file, by message key) names list, address or campaign.
        Nothing is minted here: a bad message stops the run before any link exists.
        """
        rows = rows or {}
        unused = sorted(set(rows) - set(keys))
        if unused:
            raise click.ClickException(f"--recipients names no such message: {unused[0]}")
        lists = {self.mailing_list.name: self.mailing_list}
        wanted: list[tuple[MailingList, Recipient]] = []
        for number, message in enumerate(messages, start=1):
            row = rows.get(keys[number - 1]) if keys else None
            row = row or bulk_signing.RecipientRow()
            address = _recipient(number, message, row.email)
            name = row.list_name or self.mailing_list.name
            if name not in lists:
                lists[name] = get_list(session(), name)
            wanted.append((lists[name], Recipient(address, row.campaign or self.campaign)))
        return wanted

    def sign_many(
        self, messages: Iterable[bytes], wanted: Sequence[tuple[MailingList, Recipient]]
    ) -> Iterator[bytes]:
        """Yield every message signed for its recipient (from ``recipients``), in order.

        A stream: links are minted for MAX_BATCH messages at a time (``services.batch``:
        10,000 recipients cost a few dozen statements) just before those messages are
        signed, on every core, and written; a million messages are never all in memory.
        """
        workers = 1 if len(wanted) < _POOL_FROM else None
        prepared = self._with_links(iter(messages), wanted)
        with _progress(len(wanted)) as step, _reported():
            yield from bulk_signing.sign_all(prepared, self.plan, workers=workers, progress=step)

    def _with_links(
        self, messages: Iterator[bytes], wanted: Sequence[tuple[MailingList, Recipient]]
    ) -> Iterator[bytes]:
        for start in range(0, len(wanted), MAX_BATCH):
            part = wanted[start : start + MAX_BATCH]
            found: dict[int, RecipientLinks] = {}
            for mailing_list in {id(m): m for m, _ in part}.values():
                numbers = [n for n, (m, _) in enumerate(part) if m is mailing_list]
                links = batch_links(
                    session(),
                    minter(),
                    mailing_list,
                    [part[n][1] for n in numbers],
                    now=now(),
                    keyring=runtime().keyring,
                )
                for n, link in zip(numbers, links, strict=True):
                    if link is None:
                        raise click.ClickException(f"message {start + n + 1}: {AddressErased()}")
                    found[n] = link
            for n, message in enumerate(itertools.islice(messages, len(part))):
                with _reported(f"message {start + n + 1}: "):
                    yield self.with_headers(message, found[n].headers, part[n][0])


@contextlib.contextmanager
def _progress(length: int) -> Iterator[Callable[[int], None] | None]:
    """Yield a step function for a progress bar on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label="Signing", file=sys.stderr) as bar:
        yield bar.update


def _keys(
    domain: str,
    selector: str,
    key_path: Path,
    algorithm: str,
    ed25519_key_path: Path | None,
    ed25519_selector: str | None,
) -> tuple[KeySpec, ...]:
    if (ed25519_key_path is None) != (ed25519_selector is None):
        raise click.UsageError("--also-ed25519 and --ed25519-selector go together")
    primary = dkim_signing.check_algorithm(algorithm)
    keys = [KeySpec(selector, key_path.read_bytes(), primary)]
    if ed25519_key_path is not None and ed25519_selector is not None:
        if primary != "rsa-sha256":
            # Gmail verifies only rsa-sha256: ed25519 is only ever the extra one.
            raise click.UsageError("--also-ed25519 adds to an rsa-sha256 signature")
        keys.append(KeySpec(ed25519_selector, ed25519_key_path.read_bytes(), "ed25519-sha256"))
    for key in keys:
        with _reported(f"{key.algorithm} key: "):
            dkim_signing.load_key(key.private_key, key.algorithm)
            dkim_signing.dns_record_name(key.selector, domain)
    return tuple(keys)


_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("sign")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--email", help="The recipient's address (one message on stdin).")
@click.option(
    "--mbox",
    "mbox_path",
    type=_PATH,
    help="Sign every message of this mbox (mboxrd), each for the first address of its To:.",
)
@click.option(
    "--dir",
    "dir_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Sign every *.eml file of this directory, each for the first address of its To:.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="Where --mbox writes the signed mbox, or --dir a new directory of the signed files "
    "(put in place only once every message is signed).",
)
@click.option(
    "--recipients",
    "recipients_path",
    type=_PATH,
    help="With --mbox or --dir: a CSV of key,list,email,campaign overriding, per message, "
    "--list, the To: address and --campaign (key: the message's number from 1, or file name).",
)
@click.option("--campaign", help="The sender's campaign id, for reports.")
@click.option("--domain", required=True, help="The signing domain (d=), also List-Id's.")
@click.option("--selector", required=True, help="The key's selector (s=).")
@click.option("--key", "key_path", required=True, type=_PATH, help="The private key file.")
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default="rsa-sha256",
    show_default=True,
    help="The key's algorithm. Gmail verifies only rsa-sha256.",
)
@click.option(
    "--also-ed25519",
    "ed25519_key_path",
    type=_PATH,
    help="Add a second, ed25519-sha256 signature with this key (RSA stays on top).",
)
@click.option("--ed25519-selector", help="The selector of the --also-ed25519 key.")
@unit_of_work
def sign_command(
    list_name: str,
    email: str | None,
    mbox_path: Path | None,
    dir_path: Path | None,
    output: Path | None,
    recipients_path: Path | None,
    campaign: str | None,
    domain: str,
    selector: str,
    key_path: Path,
    algorithm: str,
    ed25519_key_path: Path | None,
    ed25519_selector: str | None,
) -> None:
    """Add List-Unsubscribe, List-Unsubscribe-Post and List-Id, then DKIM-sign.

    One message: read from stdin, signed for --email, written to stdout.
    With --mbox or --dir and --output: every message, each for its own To:
    recipient, signed on every core.
    """
    if mbox_path is not None and dir_path is not None:
        raise click.UsageError("give --mbox or --dir, not both")
    if mbox_path is not None or dir_path is not None:
        if email is not None or output is None:
            flag = "--mbox" if mbox_path is not None else "--dir"
            raise click.UsageError(f"{flag} needs --output and takes each recipient from To:")
    elif email is None or output is not None:
        raise click.UsageError(
            "give --email (message on stdin), or --mbox with --output, or --dir with --output"
        )
    rows: dict[str, bulk_signing.RecipientRow] = {}
    if recipients_path is not None:
        if email is not None:
            raise click.UsageError("--recipients goes with --mbox or --dir")
        with _reported(f"{recipients_path}: "):
            rows = bulk_signing.read_recipients(recipients_path.read_text(encoding="utf-8"))
    if algorithm == "ed25519-sha256":
        click.echo(
            "Warning: Gmail verifies only rsa-sha256 signatures. Sign with an RSA key and "
            "add the ed25519 one with --also-ed25519 KEY --ed25519-selector SELECTOR.",
            err=True,
        )
    keys = _keys(domain, selector, key_path, algorithm, ed25519_key_path, ed25519_selector)
    signing = _Signing(get_list(session(), list_name), domain, keys, campaign)
    if output is not None:
        if mbox_path is not None:
            count = _sign_mbox(signing, mbox_path, output, rows)
        elif dir_path is not None:
            count = _sign_dir(signing, dir_path, output, rows)
        click.echo(f"Signed {count} messages into {output}.", err=True)
        return
    with click.open_file("-", "rb") as stdin:
        message = stdin.read()
    with _reported():
        # Refuse before minting: a message that already has the headers gets none.
        dkim_signing.check_addable(message)
        signed = signing.sign(message, email or "")
    with click.open_file("-", "wb") as stdout:
        stdout.write(signed)
        stdout.flush()


def _sign_mbox(
    signing: _Signing,
    source_path: Path,
    output: Path,
    rows: Mapping[str, bulk_signing.RecipientRow],
) -> int:
    """Sign every message of ``source_path`` into ``output`` (both mboxrd); return how many."""
    if output.resolve() == source_path.resolve():
        raise click.UsageError("--output must not be the --mbox file itself")
    if output.is_dir():
        raise click.UsageError("--output of --mbox is a file, not a directory")
    source = mailbox.mbox(source_path, create=False)
    try:
        keys = source.keys()
        envelopes: list[bytes] = []

        def messages(*, keep_envelopes: bool = False) -> Iterator[bytes]:
            """Read the mbox afresh, a message at a time (once to check, once to sign)."""
            for key in keys:
                envelope, message = _envelope(source, key)
                if keep_envelopes:
                    envelopes.append(envelope)
                yield message

        numbers = [str(n) for n in range(1, len(keys) + 1)]
        wanted = signing.recipients(messages(keep_envelopes=True), numbers, rows)
        _write_mbox(zip(envelopes, signing.sign_many(messages(), wanted), strict=True), output)
    finally:
        source.close()
    return len(keys)


def _write_mbox(entries: Iterable[tuple[bytes, bytes]], output: Path) -> None:
    """Write (envelope, message) pairs as mboxrd to ``output``, replacing it only when done."""
    # Written next to the output and renamed into place: readers never see half a file.
    handle, temporary = tempfile.mkstemp(
        dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            for envelope, message in entries:
                bulk_signing.write_mboxrd(file, envelope, message)
        os.replace(temporary, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _sign_dir(
    signing: _Signing, source: Path, output: Path, rows: Mapping[str, bulk_signing.RecipientRow]
) -> int:
    """Sign every ``*.eml`` of ``source`` into a new directory ``output``; return how many."""
    if output.exists() and not (output.is_dir() and not any(output.iterdir())):
        raise click.UsageError("--output of --dir must be a new or empty directory")
    paths = sorted(source.glob("*.eml"))
    wanted = signing.recipients(
        (path.read_bytes() for path in paths), [p.name for p in paths], rows
    )
    signed = signing.sign_many((path.read_bytes() for path in paths), wanted)
    temporary = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}."))
    try:
        for path, message in zip(paths, signed, strict=True):
            (temporary / path.name).write_bytes(message)
        if output.exists():
            output.rmdir()
        temporary.rename(output)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return len(paths)


def _envelope(source: mailbox.mbox, key: str) -> tuple[bytes, bytes]:
    """Return a message's ``From `` envelope line and its bytes, mboxrd-unescaped."""
    raw = source.get_bytes(key, from_=True)
    envelope, _, message = raw.partition(b"\n")
    return envelope.rstrip(b"\r"), bulk_signing.mboxrd_unescape(message)


def _recipient(number: int, message: bytes, address: str | None = None) -> str:
    """Return the message's recipient (``address``, else its first To:) after checking it."""
    with _reported(f"message {number}: "):
        if address is None:
            address = dkim_signing.recipient_address(message)
        dkim_signing.check_addable(message)
    if address is None:
        raise click.ClickException(f"message {number} has no usable To: address")
    try:
        return normalize_address(address)
    except UnsubsvcError as exc:
        raise click.ClickException(f"message {number}: {exc}") from exc


@click.command("keygen")
@click.option("--selector", required=True, help="The selector the key is published under.")
@click.option("--domain", required=True, help="The signing domain.")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="rsa-sha256", show_default=True)
@click.option("--bits", type=int, help="RSA key size.  [default: 2048]")
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (created with mode 0600; never overwritten).",
)
def keygen_command(
    selector: str, domain: str, algorithm: str, bits: int | None, output: Path
) -> None:
    """Make a DKIM key pair: write the private key, print the DNS TXT record to publish.

    Stdout gets one 'NAME VALUE' line, which 'unsubsvc check --dns-txt' reads.
    """
    if bits is not None and algorithm != "rsa-sha256":
        raise click.UsageError("--bits applies to rsa-sha256 keys only")
    with _reported():
        name = dkim_signing.dns_record_name(selector, domain)
        private_pem, txt = dkim_signing.keygen(
            dkim_signing.check_algorithm(algorithm), bits if bits is not None else 2048
        )
    try:
        # O_EXCL: refuse an existing file, even one created a moment ago.
        handle = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{output} exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot create {output}: {exc.strerror}") from exc
    with os.fdopen(handle, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(private_pem)
    click.echo(f"{name} {txt}")
    strings = " ".join(f'"{chunk}"' for chunk in dkim_signing.txt_strings(txt))
    click.echo(
        f"Wrote the private key to {output}. Publish this TXT record "
        f"(zone-file form, split into 255-character strings):\n{name}. IN TXT {strings}",
        err=True,
    )


@click.command("check")
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--dns-txt",
    "dns_txt",
    type=_PATH,
    help="Verify with the TXT records in this file ('NAME VALUE' lines) instead of DNS.",
)
@click.option("--dns", "use_dns", is_flag=True, help="Verify DKIM with real DNS lookups.")
@click.option("--strict", is_flag=True, help="Also fail on warnings and skipped checks.")
@click.pass_context
def check_command(
    ctx: click.Context,
    file: BinaryIO,
    as_json: bool,
    dns_txt: Path | None,
    use_dns: bool,
    strict: bool,
) -> None:
    """Check a message (FILE or stdin) for one-click unsubscribe and its DKIM signature.

    Exits 0 when no check failed; without --dns-txt or --dns, signature
    verification is skipped.
    """
    if dns_txt is not None and use_dns:
        raise click.UsageError("give --dns-txt or --dns, not both")
    dnsfunc = None
    if dns_txt is not None:
        with _reported(f"{dns_txt}: "):
            dnsfunc = dkim_signing.dns_func_from_txt(
                dkim_signing.parse_txt_records(dns_txt.read_text(encoding="utf-8"))
            )
    report = check_message(file.read(), dnsfunc, use_dns=use_dns)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.render())
    clean = all(c.status is Status.PASSED for c in report.checks)
    if not report.ok or (strict and not clean):
        ctx.exit(1)


COMMANDS: tuple[click.Command, ...] = (sign_command, keygen_command, check_command)
