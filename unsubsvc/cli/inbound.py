"""``inbound``: unsubscribe from a message mailed to the ``mailto:`` URI, fed in by an MTA.

The MTA pipes one message to ``unsubsvc inbound`` and reads the exit code
(sysexits.h): 0 done, 65 unreadable or no genuine token (bounced), 67 the list
or subscriber is gone (bounced), 75 try again later (the database is down;
deferred and retried). Output is one line on stderr that names neither the
token nor the address: MTAs may return it to the sender.

The command reads ``UNSUBSVC_*`` settings from its environment; an MTA starts
it with almost none, so go through a wrapper, say ``/usr/local/bin/unsubsvc-inbound``::

    #!/bin/sh
    set -a; . /etc/unsubsvc/env; set +a
    exec /opt/unsubsvc/.venv/bin/unsubsvc inbound

Postfix (``recipient_delimiter = +`` only for plus-addressing; no ``u`` flag,
which would lowercase a token in the address)::

    # master.cf
    unsubsvc  unix  -  n  n  -  4  pipe
      flags=DORq user=unsubsvc argv=/usr/local/bin/unsubsvc-inbound
    # main.cf
    transport_maps = hash:/etc/postfix/transport
    unsubsvc_destination_recipient_limit = 1
    # /etc/postfix/transport (then: postmap /etc/postfix/transport)
    unsubscribe@mail.example.com  unsubsvc:

Exim (``caseful_local_part`` keeps a token in the address intact)::

    # routers, before the local ones
    unsubsvc:
      driver = accept
      local_parts = unsubscribe
      domains = mail.example.com
      local_part_suffix = +*
      local_part_suffix_optional
      caseful_local_part
      transport = unsubsvc_pipe
    # transports
    unsubsvc_pipe:
      driver = pipe
      command = /usr/local/bin/unsubsvc-inbound
      user = unsubsvc
      envelope_to_add
      return_path_add
      temp_errors = 75
      return_fail_output
"""

from __future__ import annotations

from typing import BinaryIO

import click
from sqlalchemy.exc import SQLAlchemyError

from unsubsvc.cli.common import configured_runtime
from unsubsvc.core.addresses import mask_address
from unsubsvc.core.errors import InvalidToken, NotFound, UnsubsvcError
from unsubsvc.core.events import Channel
from unsubsvc.core.inbound import MAX_MESSAGE_SIZE, UnreadableMessage, find_token
from unsubsvc.core.tokens import Purpose
from unsubsvc.runtime import Runtime
from unsubsvc.services.unsubscribe import resolve, unsubscribe
from unsubsvc.settings import ConfigError

# sysexits.h: the codes Postfix's pipe(8), Exim's pipe transport and procmail understand.
EX_OK = 0
#: Bounce: the input is not a message, or carries no genuine token.
EX_DATAERR = 65
#: Bounce: a genuine token names a list or subscriber that no longer exists.
EX_NOUSER = 67
#: Defer: the MTA keeps the message and tries again later.
EX_TEMPFAIL = 75

_CHUNK = 64 * 1024


@click.command("inbound")
@click.option(
    "--file",
    "source",
    type=click.File("rb"),
    default="-",
    help="Read the message from this file instead of stdin.",
)
def inbound_command(source: BinaryIO) -> None:
    """Unsubscribe as one mailed request on stdin asks (for an MTA's pipe transport)."""
    message = read_message(source)
    try:
        runtime = configured_runtime()
    except (ConfigError, UnsubsvcError) as exc:
        # An MTA bounces mail on exit 1; a configuration fault should defer it instead.
        code, line = EX_TEMPFAIL, f"configuration: {exc}"
    else:
        code, line = deliver(message, runtime)
    click.echo(f"unsubsvc inbound: {line}", err=True)
    click.get_current_context().exit(code)


def read_message(source: BinaryIO) -> bytes:
    """Return up to one byte more than a message may have, and drain the rest of ``source``."""
    data = source.read(MAX_MESSAGE_SIZE + 1)
    # Read to the end so the MTA sees our exit code rather than a broken pipe.
    while source.read(_CHUNK):
        pass
    return data


def deliver(message: bytes, runtime: Runtime) -> tuple[int, str]:
    """Act on one mailed request in one transaction; return the exit code and the line to report."""
    try:
        token = find_token(message)
    except UnreadableMessage as exc:
        return EX_DATAERR, f"{exc}; nothing changed"
    try:
        payload = runtime.minter.signer.verify(Purpose.UNSUBSCRIBE, token, now=runtime.now())
        with runtime.unit_of_work() as session:
            target = resolve(session, payload)
            outcome = unsubscribe(session, target, channel=Channel.MAIL, now=runtime.now())
            who, scope = mask_address(target.subscriber.email), target.scope
    except InvalidToken as exc:
        return EX_DATAERR, f"the token was refused: {exc} Nothing changed."
    except NotFound as exc:
        return EX_NOUSER, f"{exc} Nothing changed."
    except SQLAlchemyError as exc:
        # Not str(exc): SQLAlchemy puts the bound parameters, the address among them, in it.
        return EX_TEMPFAIL, f"the database is unavailable ({type(exc).__name__}); try again later"
    except Exception as exc:
        # An unsubscribe request must not be lost: let the MTA keep it until this is fixed.
        return EX_TEMPFAIL, f"internal error ({type(exc).__name__}); try again later"
    if not outcome.changed:
        return EX_OK, f"{who} was already unsubscribed from {scope}"
    return EX_OK, f"unsubscribed {who} from {scope}"


COMMANDS: tuple[click.Command, ...] = (inbound_command,)
