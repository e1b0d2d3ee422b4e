"""``unsubsvc sign --mbox`` and ``--dir`` at scale: every message verifies and unsubscribes."""

from __future__ import annotations

import io
import mailbox
import random
import re
from pathlib import Path
from typing import Any

import dkim
import pytest
from flask import Flask

from tests import helpers
from tests.helpers import CommandRunner, make_list, path_of, snapshot, status
from unsubsvc.cli import mail as mail_cli
from unsubsvc.core import bulk_signing
from unsubsvc.core import dkim_signing as ds
from unsubsvc.services.batch import batch_links

DOMAIN = "example.com"
ENVELOPE = b"From news@example.com Mon Mar  2 09:30:00 2026"
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"
LIST_UNSUBSCRIBE = re.compile(rb"List-Unsubscribe: <(https://[^>]+)>")


def message_for(number: int, body: bytes = b"Hello,\nnews.\n") -> bytes:
    return (
        b"From: News <news@example.com>\n"
        + f"To: Reader {number} <reader{number}@example.org>\n".encode()
        + f"Subject: Issue {number}\nMessage-ID: <{number}@example.com>\n\n".encode()
        + body
    )


def write_mbox(path: Path, count: int) -> None:
    """An mboxrd file of ``count`` messages, each to its own reader (``message_for``)."""
    with path.open("wb") as file:
        for number in range(count):
            bulk_signing.write_mboxrd(file, ENVELOPE, message_for(number))


def make_key(folder: Path, algorithm: ds.Algorithm = "rsa-sha256") -> tuple[Path, ds.DnsFunc]:
    pem, txt = ds.keygen(algorithm)
    keyfile = folder / f"{algorithm}.key"
    keyfile.write_bytes(pem)
    return keyfile, ds.dns_func_from_txt({ds.dns_record_name("s1", DOMAIN): txt})


def sign_args(keyfile: Path, *extra: str, algorithm: str = "rsa-sha256") -> list[str]:
    return helpers.sign_args(keyfile, *extra, campaign="c1", algorithm=algorithm)


def read_mboxrd(path: Path) -> list[bytes]:
    """Read with Python's mailbox module, then undo mboxrd's escaping."""
    box = mailbox.mbox(path, create=False)
    try:
        return [bulk_signing.mboxrd_unescape(box.get_bytes(key)) for key in box.keys()]
    finally:
        box.close()


@pytest.mark.slow
def test_ten_thousand_messages_verify_and_unsubscribe(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, dns = make_key(tmp_path)
    source, output = tmp_path / "in.mbox", tmp_path / "out.mbox"
    write_mbox(source, 10_000)
    result = runner.invoke(args=sign_args(keyfile, "--mbox", str(source), "--output", str(output)))
    assert result.exit_code == 0, result.output
    assert "Signed 10000 messages" in result.output
    signed = read_mboxrd(output)
    assert len(signed) == 10_000
    for number, message in enumerate(signed):
        assert f"To: Reader {number} <reader{number}@example.org>\r\n".encode() in message
        assert dkim.verify(message, dnsfunc=dns), number
    client = app.test_client()
    sample = random.Random(13).sample(range(10_000), 200)
    for number in sample:
        found = LIST_UNSUBSCRIBE.search(signed[number])
        assert found is not None
        response = client.post(
            path_of(found.group(1).decode()), data=ONE_CLICK_BODY, content_type=FORM
        )
        assert response.status_code == 200, number
    assert status(app, f"reader{sample[0]}@example.org")["subscribed"] is False
    kept = next(n for n in range(10_000) if n not in sample)
    assert status(app, f"reader{kept}@example.org")["subscribed"] is True


def test_from_lines_survive_an_mboxrd_reader(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, dns = make_key(tmp_path)
    body = b"Hi,\nFrom now on, weekly.\n>From a quote.\n"
    source, output = tmp_path / "in.mbox", tmp_path / "out.mbox"
    buffer = io.BytesIO()
    bulk_signing.write_mboxrd(buffer, ENVELOPE, message_for(1, body))
    source.write_bytes(buffer.getvalue())
    assert b"\n>From now on" in source.read_bytes()
    result = runner.invoke(args=sign_args(keyfile, "--mbox", str(source), "--output", str(output)))
    assert result.exit_code == 0, result.output
    raw = output.read_bytes()
    assert raw.startswith(ENVELOPE + b"\n")
    assert b"\r\n>From now on, weekly.\r\n>>From a quote.\r\n" in raw
    (message,) = read_mboxrd(output)
    assert message.endswith(b"\r\n\r\nHi,\r\nFrom now on, weekly.\r\n>From a quote.\r\n")
    assert dkim.verify(message, dnsfunc=dns)


def test_sign_dir_writes_a_directory_of_signed_files(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, dns = make_key(tmp_path)
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for number in range(3):
        (source / f"m{number}.eml").write_bytes(message_for(number))
    (source / "notes.txt").write_text("not a message", encoding="utf-8")
    result = runner.invoke(args=sign_args(keyfile, "--dir", str(source), "--output", str(output)))
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in output.iterdir()) == ["m0.eml", "m1.eml", "m2.eml"]
    for number in range(3):
        message = (output / f"m{number}.eml").read_bytes()
        assert f"reader{number}@example.org".encode() in message
        assert dkim.verify(message, dnsfunc=dns)
    again = runner.invoke(args=sign_args(keyfile, "--dir", str(source), "--output", str(output)))
    assert again.exit_code == 2
    assert "must be a new or empty directory" in again.output


def test_sign_dir_with_a_bad_message_writes_nothing(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, _ = make_key(tmp_path)
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    (source / "a.eml").write_bytes(message_for(1))
    (source / "b.eml").write_bytes(b"Subject: no recipient\n\nbody\n")
    result = runner.invoke(args=sign_args(keyfile, "--dir", str(source), "--output", str(output)))
    assert result.exit_code == 1
    assert "message 2 has no usable To: address" in result.output
    assert [path.name for path in tmp_path.iterdir() if "out" in path.name] == []


def test_ed25519_alone_warns_that_gmail_needs_rsa(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    keyfile, dns = make_key(tmp_path, "ed25519-sha256")
    result = runner.invoke(
        args=sign_args(keyfile, "--email", "ann@example.com", algorithm="ed25519-sha256"),
        input=message_for(1),
    )
    assert result.exit_code == 0, result.output
    assert "Gmail verifies only rsa-sha256" in result.stderr
    assert "--also-ed25519" in result.stderr
    assert dkim.verify(result.stdout_bytes, dnsfunc=dns)


def test_recipients_file_overrides_address_list_and_campaign(
    app: Flask, runner: CommandRunner, tmp_path: Path
) -> None:
    make_list(app)
    make_list(app, "second", display_name="Second")
    keyfile, dns = make_key(tmp_path)
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for number in range(3):
        (source / f"m{number}.eml").write_bytes(message_for(number))
    recipients = tmp_path / "recipients.csv"
    recipients.write_text(
        "key,list,email,campaign\nm0.eml,,Other@Example.net,c9\nm1.eml,second,,\n",
        encoding="utf-8",
    )
    args = ["--dir", str(source), "--output", str(output), "--recipients", str(recipients)]
    result = runner.invoke(args=sign_args(keyfile, *args))
    assert result.exit_code == 0, result.output
    first, second, third = ((output / f"m{n}.eml").read_bytes() for n in range(3))
    assert all(dkim.verify(m, dnsfunc=dns) for m in (first, second, third))
    assert b"List-Id: News from Example <news.example.com>" in first
    assert b"List-Id: Second <second.example.com>" in second
    assert b"List-Id: News from Example <news.example.com>" in third
    found = LIST_UNSUBSCRIBE.search(first)
    assert found is not None
    response = app.test_client().post(
        path_of(found.group(1).decode()), data=ONE_CLICK_BODY, content_type=FORM
    )
    assert response.status_code == 200
    assert status(app, "other@example.net")["subscribed"] is False
    assert status(app, "reader1@example.org", "second")["subscribed"] is True
    assert status(app, "reader2@example.org")["subscribed"] is True


def test_an_mbox_is_minted_and_signed_a_batch_at_a_time(
    app: Flask, runner: CommandRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links are minted per batch (so a million messages never sit in memory at once);
    two lists interleaved across batch boundaries each get their own recipients' links."""
    monkeypatch.setattr(mail_cli, "MAX_BATCH", 4)
    minted: list[tuple[str, int]] = []

    def counting(session: Any, minter: Any, mailing_list: Any, recipients: Any, **kw: Any) -> Any:
        minted.append((mailing_list.name, len(recipients)))
        return batch_links(session, minter, mailing_list, recipients, **kw)

    monkeypatch.setattr(mail_cli, "batch_links", counting)
    make_list(app)
    make_list(app, "second", display_name="Second")
    keyfile, dns = make_key(tmp_path)
    source, output = tmp_path / "in.mbox", tmp_path / "out.mbox"
    write_mbox(source, 10)
    recipients = tmp_path / "recipients.csv"
    recipients.write_text(
        "key,list\n" + "".join(f"{n},second\n" for n in range(2, 11, 2)), encoding="utf-8"
    )
    args = ["--mbox", str(source), "--output", str(output), "--recipients", str(recipients)]
    result = runner.invoke(args=sign_args(keyfile, *args))
    assert result.exit_code == 0, result.output
    assert minted == [("news", 2), ("second", 2)] * 2 + [("news", 1), ("second", 1)]
    signed = read_mboxrd(output)
    for number, message in enumerate(signed):
        assert dkim.verify(message, dnsfunc=dns), number
        list_id = b"Second <second." if number % 2 else b"News from Example <news."
        assert b"List-Id: " + list_id in message, number
        found = LIST_UNSUBSCRIBE.search(message)
        assert found is not None
        answer = app.test_client().post(
            path_of(found.group(1).decode()), data=ONE_CLICK_BODY, content_type=FORM
        )
        assert answer.status_code == 200, number
        name = "second" if number % 2 else "news"
        assert status(app, f"reader{number}@example.org", name)["subscribed"] is False


def test_an_erased_address_in_a_later_batch_leaves_no_output(
    app: Flask, runner: CommandRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mail_cli, "MAX_BATCH", 4)
    make_list(app)
    assert runner.invoke(args=["erase", "--yes", "reader6@example.org"]).exit_code == 0
    keyfile, _ = make_key(tmp_path)
    source, output = tmp_path / "in.mbox", tmp_path / "out.mbox"
    write_mbox(source, 10)
    before = snapshot(app)
    result = runner.invoke(args=sign_args(keyfile, "--mbox", str(source), "--output", str(output)))
    assert result.exit_code == 1
    assert "message 7:" in result.output
    assert not output.exists() and list(tmp_path.glob(".out.mbox.*")) == []
    # The first batch's recipients were stored in the command's one transaction: rolled back.
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key,email\nm9.eml,a@example.com\n", "--recipients names no such message: m9.eml"),
        ("name,email\nm0.eml,a@example.com\n", "needs a header of key, list, email, campaign"),
        ("key,email\nm0.eml,a@example.com\nm0.eml,b@example.com\n", "repeats the key"),
    ],
    ids=["unknown-key", "bad-header", "repeated-key"],
)
def test_recipients_file_errors(
    app: Flask, runner: CommandRunner, tmp_path: Path, text: str, expected: str
) -> None:
    make_list(app)
    keyfile, _ = make_key(tmp_path)
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    (source / "m0.eml").write_bytes(message_for(0))
    recipients = tmp_path / "recipients.csv"
    recipients.write_text(text, encoding="utf-8")
    args = ["--dir", str(source), "--output", str(output), "--recipients", str(recipients)]
    result = runner.invoke(args=sign_args(keyfile, *args))
    assert result.exit_code == 1
    assert expected in result.output
    assert not output.exists()
