"""Hypothesis strategies and database diffs for the fuzz tests (tests/functional/test_fuzz.py).

The run is bounded and repeatable by default (profile ``unsubsvc-fuzz``: 50
examples a test, derandomized); ``HYPOTHESIS_PROFILE=unsubsvc-fuzz-long`` runs
more, randomized, for a search outside CI.
"""

from __future__ import annotations

import itertools
import json
import os
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.helpers import transaction
from unsubsvc.db.base import Base

#: Function-scoped fixtures (one app and database per test) are what we want:
#: every example runs against the same world, and the diff is taken per example.
_SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile(
    "unsubsvc-fuzz",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)
settings.register_profile(
    "unsubsvc-fuzz-long",
    max_examples=500,
    deadline=None,
    derandomize=False,
    database=None,
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)
#: The profile the fuzz tests use: ``unsubsvc-fuzz`` unless HYPOTHESIS_PROFILE names another.
FUZZ = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "unsubsvc-fuzz"))

# -- client addresses ---------------------------------------------------------------------

_addresses = itertools.count(1)


def fresh_address(client: FlaskClient) -> str:
    """Give ``client`` a client address never used before, and return it.

    Junk tokens and failed sign-ins are rate limited per client address (429
    after a limit); one address per request keeps the limiter out of what the
    fuzz tests check, so a 429 here is a finding, not noise.
    """
    n = next(_addresses)
    # IPv4 and IPv6 in turn; IPv6 clients are counted per /64, so each gets its own /64.
    if n % 2:
        address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    else:
        address = f"2001:db8:{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}::1"
    client.environ_base["REMOTE_ADDR"] = address
    return address


# -- database snapshots and who a change belongs to ----------------------------------------

Row = dict[str, Any]
Snapshot = dict[str, list[Row]]


def snapshot(app: Flask) -> Snapshot:
    """Return every row of every table (Base.metadata.sorted_tables), keyed by column name."""
    with transaction(app) as session:
        out: Snapshot = {}
        for table in Base.metadata.sorted_tables:
            rows = session.execute(sa.select(table).order_by(*table.primary_key.columns))
            out[table.name] = [dict(row._mapping) for row in rows]
        return out


def _key(row: Row) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def changes(before: Snapshot, after: Snapshot) -> dict[str, list[Row]]:
    """Return, per table, the rows added, removed or altered (each version once)."""
    out: dict[str, list[Row]] = {}
    for table in before.keys() | after.keys():
        old = {_key(r): r for r in before.get(table, [])}
        new = {_key(r): r for r in after.get(table, [])}
        diff = [new[k] for k in new.keys() - old.keys()] + [old[k] for k in old.keys() - new.keys()]
        if diff:
            out[table] = diff
    return out


@dataclass(frozen=True)
class Holder:
    """The subscriber a token belongs to, and the campaign its links name."""

    subscriber_id: int
    campaign_ids: frozenset[int]


def _ids(rows: Iterable[Row], column: str, where: str, value: Any) -> set[Any]:
    return {r[column] for r in rows if r.get(where) == value}


def changes_not_of(holder: Holder, before: Snapshot, after: Snapshot) -> dict[str, list[Row]]:
    """Return the changed rows that do not belong to ``holder``: what a token must never touch.

    A row is the holder's when it is their subscriber row, carries their
    ``subscriber_id``, or hangs off such a row (a topic opt-out off their
    subscription, a survey answer off their event, a webhook attempt off their
    delivery). ``campaign_stats`` counts their unsubscribe for the campaign
    their link names; an appended ``audit_event`` row names no recipient.
    """
    holder_id = holder.subscriber_id
    both = {t: before.get(t, []) + after.get(t, []) for t in before.keys() | after.keys()}
    subscriptions = _ids(both["subscription"], "id", "subscriber_id", holder_id)
    events = _ids(both["event"], "id", "subscriber_id", holder_id)
    deliveries = _ids(both["webhook_delivery"], "id", "subscriber_id", holder_id)
    old_audit = {_key(r) for r in before.get("audit_event", [])}

    def is_holders(table: str, row: Row) -> bool:
        if table == "subscriber":
            return bool(row["id"] == holder_id)
        if "subscriber_id" in row:
            return bool(row["subscriber_id"] == holder_id)
        if table == "topic_opt_out":
            return row["subscription_id"] in subscriptions
        if table == "survey_response":
            return row["event_id"] in events
        if table == "webhook_attempt":
            return row["delivery_id"] in deliveries
        if table == "campaign_stats":
            return row["campaign_id"] in holder.campaign_ids
        if table == "audit_event":
            return _key(row) not in old_audit  # appended, not altered or removed
        return False

    out = {}
    for table, rows in changes(before, after).items():
        foreign = [r for r in rows if not is_holders(table, r)]
        if foreign:
            out[table] = foreign
    return out


# -- tokens -----------------------------------------------------------------------------------

URLSAFE = string.ascii_letters + string.digits + "-_."

#: Text a token might be: anything (unicode, NUL, percent signs), token-shaped, or huge.
junk_tokens = st.one_of(
    st.text(min_size=1, max_size=300),
    st.text(alphabet=URLSAFE, min_size=1, max_size=300),
    st.text(alphabet="%0123456789abcdefABCDEF./\x00", min_size=1, max_size=60),
    st.sampled_from([".", "..", "...", "....", "1.1.a.b.c.d.e", "\x00", "%00", "%2e%2e", "..%2f"]),
    st.builds(lambda c, n: c * n, st.sampled_from("Aa.%é\x00"), st.integers(200, 20_000)),
)


def token_path(prefix: str, token: str, raw: bool) -> str:
    """Return the path of ``token`` under ``prefix``, percent-encoded unless ``raw``.

    ``raw`` keeps ``%`` and ``.`` as they are, so percent-escapes (valid or not)
    and dot segments reach Werkzeug's own path decoding.
    """
    return prefix + (quote(token, safe="%.") if raw else quote(token, safe=""))


@st.composite
def mutated(draw: st.DrawFn, token: str) -> str:
    """Return ``token`` changed the way a tamperer or a broken mail client would change it."""
    kind = draw(st.sampled_from(["flip", "truncate", "append", "insert", "delete", "field"]))
    at = draw(st.integers(0, len(token) - 1))
    if kind == "flip":
        char = draw(st.sampled_from(URLSAFE).filter(lambda c: c != token[at]))
        return token[:at] + char + token[at + 1 :]
    if kind == "truncate":
        return token[:at]
    if kind == "append":
        return token + draw(st.text(alphabet=URLSAFE + "=%", min_size=1, max_size=20))
    if kind == "insert":
        return token[:at] + draw(st.text(min_size=1, max_size=5)) + token[at:]
    if kind == "delete":
        return token[:at] + token[at + 1 :]
    # Change one field of the signed payload (an id, the subscriber, the timestamp)
    # and keep the signature: the MAC covers every field.
    fields = token.split(".")
    index = draw(st.integers(0, len(fields) - 2))
    fields[index] = draw(
        st.one_of(
            st.integers(0, 36**13).map(lambda n: format(n, "x")),
            st.text(alphabet=URLSAFE.replace(".", ""), max_size=40),
        ).filter(lambda v: v != fields[index])
    )
    return ".".join(fields)


# -- form values --------------------------------------------------------------------------

#: Any text a form field might carry: short, unicode, control characters, huge.
field_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.builds(lambda c, n: c * n, st.sampled_from("x€\x00<"), st.integers(1_000, 70_000)),
)


@dataclass(frozen=True)
class FilePart:
    """A multipart part with a filename where the form expects text."""

    content: bytes
    filename: str


file_parts = st.builds(
    FilePart,
    st.binary(max_size=200),
    st.text(alphabet=string.ascii_letters + ".", min_size=1, max_size=20),
)


def form_fields(names: list[str], choices: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Return form pairs over ``names``: missing, duplicated, known choices or any text."""
    value = st.one_of(st.sampled_from(choices), field_text) if choices else field_text
    pair = st.tuples(st.sampled_from(names), value)
    return st.lists(pair, max_size=6)


# -- JSON -------------------------------------------------------------------------------

#: Numbers JSON allows that Python and databases do not all agree on.
awkward_numbers = st.sampled_from(
    [2**63, 2**63 - 1, -(2**63) - 1, 2**31, -1, 0, 10**400, 1e308, -1e308, 1.5, 5e-324]
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    awkward_numbers,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e308", "2026-13-45T25:61:00Z", "a@b.c"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def nested(depth: int) -> str:
    """Return a JSON text nested ``depth`` arrays deep (deeper than any parser's stack)."""
    return "[" * depth + "]" * depth
