"""Messages: ``sign`` (add the list headers and DKIM-sign), ``keygen`` and ``check``.

``sign`` writes the exact bytes it signed: the message never goes through
Python's ``email`` package, which would re-fold ``List-Unsubscribe`` into an
encoded word (RFC 8058 §3.1 wants the plain value). ``keygen`` and ``check``
need no database.
"""

from __future__ import annotations

import contextlib
import json
import mailbox
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import click

from unsubsvc.cli.common import minter, now, runtime, session, unit_of_work
from unsubsvc.core import dkim_signing
from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.dkim_signing import ALGORITHMS, Algorithm
from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.core.message_check import Status, check_message
from unsubsvc.db.models import MailingList
from unsubsvc.services.links import recipient_links
from unsubsvc.services.lists import get_list


@contextlib.contextmanager
def _reported(prefix: str = "") -> Iterator[None]:
    """Turn a ValueError from the core into ``Error: ...`` with exit code 1."""
    try:
        yield
    except ValueError as exc:
        raise click.ClickException(f"{prefix}{exc}") from exc


@dataclass(frozen=True)
class _Key:
    selector: str
    private_key: bytes
    algorithm: Algorithm


@dataclass(frozen=True)
class _Signing:
    """The list and keys every message of one run is signed with."""

    mailing_list: MailingList
    domain: str
    keys: tuple[_Key, ...]
    campaign: str | None

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
        headers = list(links.headers)
        if not dkim_signing.header_values(message, dkim_signing.LIST_ID):
            # RFC 2919: one List-Id per message; a message that names its list keeps it.
            headers.insert(
                0,
                dkim_signing.list_id_header(
                    self.mailing_list.display_name, self.mailing_list.name, self.domain
                ),
            )
        signed = dkim_signing.add_headers(message, headers)
        # The primary key signs last so its DKIM-Signature is on top (verifiers
        # and dkim.verify try the topmost first); RFC 6376 §5.4 keeps signatures
        # independent because neither covers DKIM-Signature fields.
        for key in reversed(self.keys):
            signed = dkim_signing.sign(
                signed,
                domain=self.domain,
                selector=key.selector,
                private_key=key.private_key,
                algorithm=key.algorithm,
            )
        return signed


def _keys(
    domain: str,
    selector: str,
    key_path: Path,
    algorithm: str,
    ed25519_key_path: Path | None,
    ed25519_selector: str | None,
) -> tuple[_Key, ...]:
    if (ed25519_key_path is None) != (ed25519_selector is None):
        raise click.UsageError("--also-ed25519 and --ed25519-selector go together")
    primary = dkim_signing.check_algorithm(algorithm)
    keys = [_Key(selector, key_path.read_bytes(), primary)]
    if ed25519_key_path is not None and ed25519_selector is not None:
        if primary != "rsa-sha256":
            # Gmail verifies only rsa-sha256: ed25519 is only ever the extra one.
            raise click.UsageError("--also-ed25519 adds to an rsa-sha256 signature")
        keys.append(_Key(ed25519_selector, ed25519_key_path.read_bytes(), "ed25519-sha256"))
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
    help="Sign every message of this mbox, each for the first address of its To:.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --mbox writes the signed mbox (replaced only once every message is signed).",
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
    output: Path | None,
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
    With --mbox and --output: every message, each for its own To: recipient.
    """
    if mbox_path is not None:
        if email is not None or output is None:
            raise click.UsageError("--mbox needs --output and takes each recipient from To:")
    elif email is None or output is not None:
        raise click.UsageError("give --email (message on stdin), or --mbox with --output")
    keys = _keys(domain, selector, key_path, algorithm, ed25519_key_path, ed25519_selector)
    signing = _Signing(get_list(session(), list_name), domain, keys, campaign)
    if mbox_path is not None and output is not None:
        count = _sign_mbox(signing, mbox_path, output)
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


def _sign_mbox(signing: _Signing, source_path: Path, output: Path) -> int:
    """Sign every message of ``source_path`` into ``output``; return how many."""
    if output.resolve() == source_path.resolve():
        raise click.UsageError("--output must not be the --mbox file itself")
    source = mailbox.mbox(source_path, create=False)
    try:
        keys = source.keys()
        # Check every message before minting anything, so a bad one late in
        # the file leaves neither output nor half-made links behind.
        for number, key in enumerate(keys, start=1):
            _, message = _envelope(source, key)
            _recipient(number, message)
        _write_mbox(signing, source, keys, output)
        return len(keys)
    finally:
        source.close()


def _write_mbox(signing: _Signing, source: mailbox.mbox, keys: Sequence[str], output: Path) -> None:
    # Written next to the output and renamed into place: readers never see half a file.
    handle, temporary = tempfile.mkstemp(
        dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        target = mailbox.mbox(temporary)
        try:
            for number, key in enumerate(keys, start=1):
                envelope, message = _envelope(source, key)
                address = _recipient(number, message)
                try:
                    signed = signing.sign(message, address)
                except (ValueError, UnsubsvcError) as exc:
                    raise click.ClickException(f"message {number}: {exc}") from exc
                if b"\nFrom " in signed:
                    # mbox would quote it as '>From ', changing the signed bytes.
                    raise click.ClickException(f"message {number} has a line starting 'From '")
                # Bytes that start with a From_ line keep it: the envelope survives.
                target.add(envelope + b"\n" + signed)
            target.flush()
        finally:
            target.close()
        os.replace(temporary, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _envelope(source: mailbox.mbox, key: str) -> tuple[bytes, bytes]:
    """Return a message's ``From `` envelope line and its raw bytes, untouched."""
    raw = source.get_bytes(key, from_=True)
    envelope, _, message = raw.partition(b"\n")
    return envelope.rstrip(b"\r"), message


def _recipient(number: int, message: bytes) -> str:
    with _reported(f"message {number}: "):
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
