"""``sign``, ``keygen`` and ``check`` through Flask's CLI runner: sign, verify, unsubscribe."""

from __future__ import annotations

import json
import mailbox
import re
import stat
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from flask import Flask

from tests.helpers import (
    CommandRunner,
    links_for,
    make_list,
    path_of,
    runner_for,
    sign_args,
    snapshot,
    status,
)
from unsubsvc.core import dkim_signing as ds
from unsubsvc.core.bulk_signing import mboxrd_unescape

DATA = Path(__file__).resolve().parents[1] / "data"
MESSAGE = (DATA / "message.eml").read_bytes()
MBOX = DATA / "three.mbox"
DOMAIN = "example.com"
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def keygen(
    runner: CommandRunner, folder: Path, algorithm: str = "rsa-sha256", selector: str = "s1"
) -> tuple[Path, Path]:
    """Make a key with ``unsubsvc keygen``; return the key file and a file of its TXT record."""
    keyfile = folder / f"{selector}.key"
    result = runner.invoke(
        args=[
            "keygen",
            "--selector",
            selector,
            "--domain",
            DOMAIN,
            "--algorithm",
            algorithm,
            "--output",
            str(keyfile),
        ]
    )
    assert result.exit_code == 0, result.output
    records = folder / f"{selector}.txt"
    records.write_text(result.stdout, encoding="utf-8")
    return keyfile, records


def lookup(*record_files: Path) -> ds.DnsFunc:
    table: dict[str, str] = {}
    for path in record_files:
        table.update(ds.parse_txt_records(path.read_text(encoding="utf-8")))
    return ds.dns_func_from_txt(table)


def sign(
    runner: CommandRunner,
    keyfile: Path,
    *extra: str,
    message: bytes = MESSAGE,
    email: str = "ann@example.com",
    algorithm: str = "rsa-sha256",
    selector: str = "s1",
) -> bytes:
    result = runner.invoke(
        args=sign_args(
            keyfile,
            "--email",
            email,
            *extra,
            campaign="c1",
            algorithm=algorithm,
            selector=selector,
        ),
        input=message,
    )
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def header_section(message: bytes) -> bytes:
    return message.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def h_tag(message: bytes) -> list[str]:
    value = ds.header_values(message, "DKIM-Signature")[0]
    found = re.search(r"(?:^|;)\s*h=([^;]*)", value)
    assert found is not None
    return "".join(found.group(1).split()).split(":")


def check(runner: CommandRunner, message: bytes, *args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(args=["check", "--json", *args], input=message)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"], ids=["rsa", "ed25519"])
def test_signed_message_verifies_with_the_keygen_record(
    app: Flask, runner: CommandRunner, tmp_path: Path, algorithm: str
) -> None:
    make_list(app)
    keyfile, records = keygen(runner, tmp_path, algorithm)
    signed = sign(runner, keyfile, algorithm=algorithm)
    assert signed.startswith(f"DKIM-Signature: v=1; a={algorithm};".encode())
    assert dkim.verify(signed, dnsfunc=lookup(records))
    exit_code, report = check(runner, signed, "--dns-txt", str(records))
    assert exit_code == 0, report
    assert report["ok"] is True


def test_h_covers_the_list_headers_twice(app: Flask, runner: CommandRunner, tmp_path: Path) -> None:
    make_list(app)
    keyfile, _ = keygen(runner, tmp_path)
    names = h_tag(sign(runner, keyfile))
    for name in ("from", "list-unsubscribe", "list-unsubscribe-post"):
        assert names.count(name) == 2, names
    for name in ("list-id", "to", "subject", "date", "message-id", "mime-version"):
        assert name in names


def test_list_unsubscribe_is_byte_for_byte_the_header_lines(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, _ = keygen(runner, tmp_path)
    signed = sign(runner, keyfile)
    expected = links_for(app, "ann@example.com", campaign="c1").header_lines() + "\r\n"
    head = header_section(signed)
    assert expected.encode("ascii") in head
    assert b"=?" not in head.split(b"List-Unsubscribe:", 1)[1].split(b"\r\n")[0]
    assert b"List-Id: News from Example <news.example.com>\r\n" in head
    # The message itself is untouched below the added fields.
    assert signed.endswith(MESSAGE.replace(b"\n", b"\r\n"))


def test_the_signed_uri_unsubscribes_with_one_click(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, _ = keygen(runner, tmp_path)
    signed = sign(runner, keyfile)
    found = re.search(rb"List-Unsubscribe: <(https://[^>]+)>", signed)
    assert found is not None
    assert status(app)["subscribed"] is True
    response = app.test_client().post(
        path_of(found.group(1).decode()), data=ONE_CLICK_BODY, content_type=FORM
    )
    assert response.status_code == 200
    assert status(app)["subscribed"] is False


def test_a_changed_list_unsubscribe_fails_verify_and_check(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, records = keygen(runner, tmp_path)
    signed = sign(runner, keyfile)
    token = re.search(rb"/u/([^>]+)>", signed)
    assert token is not None
    original = token.group(1)
    changed = original[:-1] + (b"B" if original.endswith(b"A") else b"A")
    forged = signed.replace(original, changed, 1)
    assert not dkim.verify(forged, dnsfunc=lookup(records))
    exit_code, report = check(runner, forged, "--dns-txt", str(records))
    assert exit_code == 1
    assert report["failed"] == ["dkim-verifies"]


def test_a_second_list_unsubscribe_breaks_the_signature(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, records = keygen(runner, tmp_path)
    forged = b"List-Unsubscribe: <https://evil.example/u/x>\r\n" + sign(runner, keyfile)
    assert not dkim.verify(forged, dnsfunc=lookup(records))
    exit_code, report = check(runner, forged, "--dns-txt", str(records))
    assert exit_code == 1
    assert report["failed"] == ["list-unsubscribe", "dkim-verifies"]


def test_also_ed25519_adds_a_second_signature_under_the_rsa_one(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    rsa_key, rsa_records = keygen(runner, tmp_path)
    ed_key, ed_records = keygen(runner, tmp_path, "ed25519-sha256", "ed1")
    signed = sign(runner, rsa_key, "--also-ed25519", str(ed_key), "--ed25519-selector", "ed1")
    algorithms = re.findall(rb"DKIM-Signature: v=1; a=([a-z0-9-]+);", signed)
    assert algorithms == [b"rsa-sha256", b"ed25519-sha256"]
    dns = lookup(rsa_records, ed_records)
    assert dkim.DKIM(signed).verify(idx=0, dnsfunc=dns)
    assert dkim.DKIM(signed).verify(idx=1, dnsfunc=dns)


def test_sign_mbox_signs_each_message_for_its_recipient(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, records = keygen(runner, tmp_path)
    output = tmp_path / "signed.mbox"
    result = runner.invoke(
        args=sign_args(keyfile, "--mbox", str(MBOX), "--output", str(output), campaign="c1")
    )
    assert result.exit_code == 0, result.output
    source, target = mailbox.mbox(MBOX, create=False), mailbox.mbox(output, create=False)
    try:
        assert len(target) == len(source) == 3
        recipients = ["ann@example.com", "Bob@Example.org", "carol@example.net"]
        for key, source_key, address in zip(target.keys(), source.keys(), recipients, strict=True):
            message = target.get_bytes(key)
            envelope = target.get_bytes(key, from_=True).split(b"\n", 1)[0]
            assert envelope == source.get_bytes(source_key, from_=True).split(b"\n", 1)[0]
            # mboxrd: the reader takes one '>' off '>From ' lines (bulk_signing's docstring).
            assert dkim.verify(mboxrd_unescape(message), dnsfunc=lookup(records)), address
            own = links_for(app, address, campaign="c1").header_lines() + "\r\n"
            assert own.encode("ascii") in header_section(message)
            assert message.endswith(source.get_bytes(source_key).replace(b"\n", b"\r\n"))
        assert b"\r\n>From the team" in target.get_bytes(target.keys()[1])
        bob = target.get_bytes(target.keys()[1])
    finally:
        source.close()
        target.close()
    found = re.search(rb"List-Unsubscribe: <(https://[^>]+)>", bob)
    assert found is not None
    response = app.test_client().post(
        path_of(found.group(1).decode()), data=ONE_CLICK_BODY, content_type=FORM
    )
    assert response.status_code == 200
    assert status(app, "bob@example.org")["subscribed"] is False
    assert status(app, "ann@example.com")["subscribed"] is True
    assert status(app, "carol@example.net")["subscribed"] is True


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"To: carol@example.net\n", b"", "message 3 has no usable To: address"),
        (
            b"To: carol@example.net\n",
            b"To: undisclosed-recipients:;\n",
            "message 3 has no usable To: address",
        ),
        (b"To: Ann Lee <ann@example.com>", b"To: <ann@localhost>", "message 1: not an e-mail"),
        (
            b"To: carol@example.net\n",
            b"To: carol@example.net\nList-Unsubscribe: <https://old.example/u/x>\n",
            "message 3: the message already has a List-Unsubscribe header",
        ),
    ],
    ids=["no-to", "no-address", "bad-address", "already-has-header"],
)
def test_sign_mbox_names_the_bad_message_and_writes_nothing(
    app: Flask, runner: CommandRunner, tmp_path: Path, old: bytes, new: bytes, expected: str
) -> None:
    make_list(app)
    keyfile, _ = keygen(runner, tmp_path)
    broken = tmp_path / "broken.mbox"
    broken.write_bytes(MBOX.read_bytes().replace(old, new))
    output = tmp_path / "out" / "signed.mbox"
    output.parent.mkdir()
    result = runner.invoke(args=sign_args(keyfile, "--mbox", str(broken), "--output", str(output)))
    assert result.exit_code == 1
    assert expected in result.output
    assert list(output.parent.iterdir()) == []
    # Nothing was minted for the messages before it either.
    assert snapshot(app)["subscriber"] == []


def test_keygen_writes_a_private_key_and_refuses_to_overwrite(
    runner: CommandRunner, tmp_path: Path
) -> None:
    keyfile, records = keygen(runner, tmp_path)
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert keyfile.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    name, _, value = records.read_text(encoding="utf-8").strip().partition(" ")
    assert name == "s1._domainkey.example.com"
    assert value.startswith("v=DKIM1; k=rsa; p=")
    before = keyfile.read_bytes()
    again = runner.invoke(
        args=["keygen", "--selector", "s1", "--domain", DOMAIN, "--output", str(keyfile)]
    )
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.output
    assert keyfile.read_bytes() == before


def test_keygen_prints_zone_file_strings_that_check_reads(
    runner: CommandRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        args=["keygen", "--selector", "s1", "--domain", DOMAIN, "--output", str(tmp_path / "k")]
    )
    assert result.exit_code == 0
    zone_line = result.stderr.strip().splitlines()[-1]
    assert zone_line.startswith('s1._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=')
    bare = ds.parse_txt_records(result.stdout)
    assert ds.parse_txt_records(zone_line) == bare


@pytest.mark.parametrize(
    ("headers", "failed"),
    [
        ("", {"list-unsubscribe", "list-unsubscribe-post"}),
        (
            "List-Unsubscribe: <http://unsub.example.com/u/t>\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n",
            {"list-unsubscribe-uri"},
        ),
        (
            "List-Unsubscribe: <https://unsub.example.com/u/t>\n"
            "List-Unsubscribe: <https://unsub.example.com/u/t>\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n",
            {"list-unsubscribe"},
        ),
        (
            "List-Unsubscribe: =?utf-8?q?=3Chttps=3A//unsub=2Eexample=2Ecom/u/t=3E?=\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n",
            {"list-unsubscribe-uri", "list-unsubscribe-not-encoded"},
        ),
    ],
    ids=["no-headers", "http-uri", "two-list-unsubscribe", "encoded-word"],
)
def test_check_fails_a_broken_unsigned_message_with_named_checks(
    runner: CommandRunner, headers: str, failed: set[str]
) -> None:
    exit_code, report = check(runner, headers.encode() + MESSAGE)
    assert exit_code == 1
    assert set(report["failed"]) == failed | {"dkim-covers-list-headers"}  # type: ignore[call-overload]


def test_check_fails_when_h_lacks_list_unsubscribe_post(
    runner: CommandRunner, tmp_path: Path
) -> None:
    keyfile, records = keygen(runner, tmp_path)
    message = (
        b"List-Unsubscribe: <https://unsub.example.com/u/t>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" + MESSAGE
    )
    signature = dkim.sign(message, b"s1", DOMAIN.encode(), keyfile.read_bytes())
    exit_code, report = check(runner, signature + message, "--dns-txt", str(records))
    assert exit_code == 1
    assert report["failed"] == ["dkim-covers-list-headers"]


def test_check_reads_a_file_and_renders_for_people(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, records = keygen(runner, tmp_path)
    path = tmp_path / "signed.eml"
    path.write_bytes(sign(runner, keyfile))
    result = runner.invoke(args=["check", str(path), "--dns-txt", str(records)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "OK"
    assert "PASS  dkim-verifies" in result.stdout


def test_check_without_records_skips_verification_unless_strict(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, _ = keygen(runner, tmp_path)
    signed = sign(runner, keyfile)
    exit_code, report = check(runner, signed)
    assert exit_code == 0
    statuses = {c["name"]: c["status"] for c in report["checks"]}  # type: ignore[attr-defined]
    assert statuses["dkim-verifies"] == "skipped"
    assert runner.invoke(args=["check", "--strict"], input=signed).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "ann@example.com", "--output", "x.mbox"], "--mbox with --output"),
        (["--mbox", str(MBOX)], "--mbox needs --output"),
        ([], "give --email"),
        (["--email", "ann@example.com", "--also-ed25519", str(MBOX)], "go together"),
    ],
    ids=["output-without-mbox", "mbox-without-output", "no-recipient", "ed25519-half"],
)
def test_sign_usage_errors(
    app: Flask, runner: CommandRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    make_list(app)
    keyfile, _ = keygen(runner, tmp_path)
    result = runner.invoke(args=sign_args(keyfile, *args), input=MESSAGE)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown-list", "unknown list 'other'"),
        ("already-has-header", "already has a List-Unsubscribe header"),
        ("wrong-key", "needs an Ed25519 private key"),
        ("bad-address", "not an e-mail address"),
    ],
    ids=["unknown-list", "already-has-header", "wrong-key", "bad-address"],
)
def test_sign_errors_exit_1_and_write_nothing(
    app: Flask, runner: CommandRunner, tmp_path: Path, case: str, expected: str
) -> None:
    make_list(app)
    keyfile, _ = keygen(runner, tmp_path)
    args = {
        "unknown-list": ["--list", "other", "--email", "ann@example.com"],
        "already-has-header": ["--list", "news", "--email", "ann@example.com"],
        "wrong-key": [
            "--list",
            "news",
            "--email",
            "ann@example.com",
            "--algorithm",
            "ed25519-sha256",
        ],
        "bad-address": ["--list", "news", "--email", "not-an-address"],
    }[case]
    message = MESSAGE
    if case == "already-has-header":
        message = b"List-Unsubscribe: <https://other.example/u/x>\n" + MESSAGE
    result = runner.invoke(
        args=sign_args(keyfile, *args, list_name=None),
        input=message,
    )
    assert result.exit_code == 1
    assert expected in result.output
    assert result.stdout_bytes == b""


def test_keygen_and_check_need_no_database(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Nothing listens on port 1: any attempt to use the database would fail.
    monkeypatch.setenv("UNSUBSVC_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    runner = runner_for(make_app(tables=False))
    keyfile, records = keygen(runner, tmp_path)
    message = ds.sign(
        ds.add_headers(
            MESSAGE,
            [
                ("List-Unsubscribe", "<https://unsub.example.com/u/t>"),
                ("List-Unsubscribe-Post", ONE_CLICK_BODY),
            ],
        ),
        domain=DOMAIN,
        selector="s1",
        private_key=keyfile.read_bytes(),
    )
    exit_code, report = check(runner, message, "--dns-txt", str(records))
    assert exit_code == 0, report
