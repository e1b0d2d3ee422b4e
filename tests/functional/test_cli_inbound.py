"""``unsubsvc inbound``: messages as an MTA's pipe transport delivers them, and its exit codes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.helpers import (
    CommandRunner,
    events,
    links_for,
    make_list,
    runner_for,
    snapshot,
    status,
    transaction,
)
from unsubsvc.cli.inbound import EX_DATAERR, EX_NOUSER, EX_OK, EX_TEMPFAIL
from unsubsvc.core.inbound import MAX_MESSAGE_SIZE
from unsubsvc.core.keys import Keyring
from unsubsvc.core.tokens import Purpose, TokenPayload, TokenSigner
from unsubsvc.db.models import MailingList, Subscriber, Topic
from unsubsvc.web.context import runtime_of

# Gmail's web client answering the mailto: link, as Postfix's local(8) stores it:
# the long subject folded before the token, a multipart/alternative body.
GMAIL = b"""\
Return-Path: <ann@example.com>
Delivered-To: unsubscribe@mail.example.com
Received: from mail-wr1-f41.google.com (mail-wr1-f41.google.com [209.85.221.41])
\tby mx.mail.example.com (Postfix) with ESMTPS id 4Zk9Lq0Yx2z9sWd
\tfor <unsubscribe@mail.example.com>; Mon,  2 Mar 2026 09:31:07 +0000 (UTC)
Received: by mail-wr1-f41.google.com with SMTP id ffacd0b85a97d-38f2b7ce319so1043217f8f.2
        for <unsubscribe@mail.example.com>; Mon, 02 Mar 2026 01:31:06 -0800 (PST)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=20230601;
 h=to:subject:message-id:date:from:mime-version:from:to:cc:subject:date;
 bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==
MIME-Version: 1.0
From: Ann Example <ann@example.com>
Date: Mon, 2 Mar 2026 10:31:05 +0100
Message-ID: <CAJ+x7Ok2vQ1Rk4Xw@mail.gmail.com>
Subject: unsubscribe
 {token}
To: unsubscribe@mail.example.com
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

--000000000000a1b2c3d4e5f60718
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

Bitte austragen =E2=80=93 please take me off this list.=20
Thanks, Ann

--000000000000a1b2c3d4e5f60718
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Bitte austragen =E2=80=93 please take me off this list.</di=
v>

--000000000000a1b2c3d4e5f60718--
"""

# Apple Mail on an iPhone: the subject as two RFC 2047 encoded words, split inside the token.
APPLE = b"""\
Return-Path: <ann@example.com>
X-Original-To: unsubscribe@mail.example.com
Delivered-To: unsubscribe@mail.example.com
Received: from st43p00im-zteg10062001.me.com (st43p00im-zteg10062001.me.com [17.58.63.172])
\tby mx.mail.example.com (Postfix) with ESMTPS id 4Zk9Mt3KQ1z9sXb
\tfor <unsubscribe@mail.example.com>; Mon,  2 Mar 2026 09:32:40 +0000 (UTC)
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable
From: Ann <ann@example.com>
Mime-Version: 1.0 (1.0)
Date: Mon, 2 Mar 2026 10:32:38 +0100
Subject: =?utf-8?B?{subject_b64_1}?=
 =?utf-8?B?{subject_b64_2}?=
Message-Id: <8F0C2E7A-4B1D-4C55-9E2A-7D3F1B6A9C01@example.com>
To: unsubscribe@mail.example.com
X-Mailer: iPhone Mail (22D82)

This message will unsubscribe you from the list. Sent from my iPhone, whic=
h wraps long lines with soft breaks.=
"""

# Outlook, handed over by Postfix's pipe(8) with flags=FDOR, to a plus address:
# the token is in the envelope recipient (quoted: an empty field makes ``..``).
PLUS_ADDRESS = b"""\
From ann@example.com  Mon Mar  2 09:35:12 2026
Return-Path: <ann@example.com>
Delivered-To: "unsubscribe+{token}"@mail.example.com
X-Original-To: "unsubscribe+{token}"@mail.example.com
Received: from EUR05-AM6-obe.outbound.protection.outlook.com
 (mail-am6eur05on2101.outbound.protection.outlook.com [40.107.22.101])
\tby mx.mail.example.com (Postfix) with ESMTPS id 4Zk9R03bWcz9sYf
\tfor <"unsubscribe+{token}"@mail.example.com>; Mon,  2 Mar 2026 09:35:12 +0000 (UTC)
From: Ann Example <ann@example.com>
To: "unsubscribe+{token}"@mail.example.com
Subject: Unsubscribe
Thread-Topic: Unsubscribe
Thread-Index: AdqM0l3x7Yk2p4JvT0uN3bQ8xkQ1Ag==
Date: Mon, 2 Mar 2026 09:35:10 +0000
Message-ID: <AM6PR05MB5123C0FFEE0000000A1B2C3D4E5F6@AM6PR05MB5123.eurprd05.prod.outlook.com>
Content-Language: en-GB
MIME-Version: 1.0
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

D=E9sabonnez-moi, s'il vous pla=EEt.
"""

MESSAGES = {"gmail": GMAIL, "apple": APPLE, "plus-address": PLUS_ADDRESS}


def delivered(template: bytes, token: str, *, crlf: bool = False) -> bytes:
    """Fill ``template`` with ``token`` and give it the line endings an MTA would."""
    encoded = ("unsubscribe " + token).encode()
    first, second = (base64.b64encode(part) for part in (encoded[:45], encoded[45:]))
    filled = (
        template.replace(b"{token}", token.encode())
        .replace(b"{subject_b64_1}", first)
        .replace(b"{subject_b64_2}", second)
    )
    return filled.replace(b"\n", b"\r\n") if crlf else filled


def tampered(token: str) -> str:
    """Return ``token`` with one character of its signature changed."""
    return token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]


@pytest.fixture
def news(app: Flask) -> int:
    return make_list(app)


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("kind", list(MESSAGES))
def test_a_mailed_request_unsubscribes(
    app: Flask, runner: CommandRunner, news: int, kind: str, crlf: bool
) -> None:
    token = links_for(app).token
    result = runner.invoke(args=["inbound"], input=delivered(MESSAGES[kind], token, crlf=crlf))
    assert result.exit_code == EX_OK, result.output
    assert status(app)["subscribed"] is False
    assert [(e["kind"], e["channel"], e["campaign"]) for e in events(app)] == [
        ("unsubscribe", "mail", "c1")
    ]
    # Nothing on stdout (an MTA may mail it back); one line on stderr, no token, no address.
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "unsubscribed A•n@Example.com from all mail from News from Example" in result.stderr
    assert token not in result.stderr
    assert "ann@example.com" not in result.stderr.lower()


def test_a_topic_token_unsubscribes_only_that_topic(
    app: Flask, runner: CommandRunner, news: int
) -> None:
    token = links_for(app, topic="product", campaign="spring").token
    result = runner.invoke(args=["inbound"], input=delivered(GMAIL, token, crlf=True))
    assert result.exit_code == EX_OK, result.output
    state = status(app)
    assert state["subscribed"] is True
    assert state["topics"] == {"product": False, "events": True}
    [event] = events(app)
    assert (event["channel"], event["campaign"]) == ("mail", "spring")
    assert event["topic_id"] is not None


def test_a_repeat_changes_nothing_and_exits_0(app: Flask, runner: CommandRunner, news: int) -> None:
    message = delivered(APPLE, links_for(app).token)
    assert runner.invoke(args=["inbound"], input=message).exit_code == EX_OK
    before = snapshot(app)
    again = runner.invoke(args=["inbound"], input=message)
    assert again.exit_code == EX_OK
    assert "already unsubscribed" in again.stderr
    assert len(events(app)) == 1
    assert snapshot(app) == before


def test_reads_the_message_from_a_file(
    app: Flask, runner: CommandRunner, news: int, tmp_path: Path
) -> None:
    path = tmp_path / "request.eml"
    path.write_bytes(delivered(GMAIL, links_for(app).token))
    result = runner.invoke(args=["inbound", "--file", str(path)])
    assert result.exit_code == EX_OK, result.output
    assert status(app)["subscribed"] is False


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4,
        delivered(GMAIL, "please remove me"),
        delivered(GMAIL, "1.1.notatoken...aaaaaa.bbbb"),
        b"Subject: unsubscribe\n\n" + b"x" * MAX_MESSAGE_SIZE,
    ],
    ids=["empty", "binary-junk", "no-token", "token-like-garbage", "oversized"],
)
def test_junk_exits_65_and_changes_nothing(
    app: Flask, runner: CommandRunner, news: int, message: bytes
) -> None:
    links_for(app)
    before = snapshot(app)
    result = runner.invoke(args=["inbound"], input=message)
    assert result.exit_code == EX_DATAERR, result.output
    assert "nothing changed" in result.stderr
    assert result.stdout == ""
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "forge",
    [
        lambda app: tampered(links_for(app).token),
        lambda app: TokenSigner(Keyring(("someone-elses-key",))).sign(
            Purpose.UNSUBSCRIBE, _payload(app), now=_now(app)
        ),
        lambda app: TokenSigner(Keyring(("test-secret-key-0123456789",))).sign(
            Purpose.PREFERENCES, _payload(app), now=_now(app)
        ),
    ],
    ids=["tampered", "foreign-key", "preferences-token"],
)
def test_a_token_that_is_not_genuine_exits_65_and_changes_nothing(
    app: Flask, runner: CommandRunner, news: int, forge: Callable[[Flask], str]
) -> None:
    token = forge(app)
    before = snapshot(app)
    result = runner.invoke(args=["inbound"], input=delivered(GMAIL, token))
    assert result.exit_code == EX_DATAERR, result.output
    assert "token was refused" in result.stderr
    assert token not in result.stderr
    assert snapshot(app) == before


def _payload(app: Flask) -> TokenPayload:
    """Return the payload a genuine token for Ann carries."""
    token = links_for(app).token
    return runtime_of(app).minter.signer.verify(Purpose.UNSUBSCRIBE, token)


def _now(app: Flask) -> datetime:
    return runtime_of(app).now()


@pytest.mark.parametrize(
    ("model", "topic"),
    [(MailingList, None), (Subscriber, None), (Topic, "product")],
    ids=["list-deleted", "subscriber-deleted", "topic-deleted"],
)
def test_a_token_for_something_deleted_exits_67(
    app: Flask, runner: CommandRunner, news: int, model: type, topic: str | None
) -> None:
    token = links_for(app, topic=topic).token
    with transaction(app) as session:
        session.execute(sa.delete(model))
        session.commit()
    before = snapshot(app)
    result = runner.invoke(args=["inbound"], input=delivered(PLUS_ADDRESS, token))
    assert result.exit_code == EX_NOUSER, result.output
    assert "no longer exists" in result.stderr or "no subscriber" in result.stderr
    assert snapshot(app) == before


def test_an_unreachable_database_exits_75(
    app: Flask, make_app: Callable[..., Flask], news: int, tmp_path: Path
) -> None:
    token = links_for(app).token
    down = make_app(tables=False, database_url=f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}")
    runner = runner_for(down)
    result = runner.invoke(args=["inbound"], input=delivered(GMAIL, token, crlf=True))
    assert result.exit_code == EX_TEMPFAIL, result.output
    assert "try again later" in result.stderr
    assert result.stdout == ""
    # The message is read before the database: junk is refused for good, not deferred.
    junk = runner.invoke(args=["inbound"], input=b"\x00\x01junk")
    assert junk.exit_code == EX_DATAERR
    assert status(app)["subscribed"] is True


def test_configuration_error_defers_instead_of_bouncing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A misconfigured server must not bounce the sender's unsubscribe mail (exit 75)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("UNSUBSVC_")}
    env.update(UNSUBSVC_ENV="production", UNSUBSVC_INSTANCE_PATH=str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "unsubsvc.cli", "inbound"],
        input=b"Subject: unsubscribe\r\n\r\n",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 75, run.stderr
    assert b"UNSUBSVC_SECRET_KEY" in run.stderr
    other = subprocess.run(
        [sys.executable, "-m", "unsubsvc.cli", "status", "--list", "x", "--email", "a@b.co"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert other.returncode == 1
