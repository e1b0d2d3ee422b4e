"""The catalog check: every string a recipient can see is translated in every shipped language.

Extracts the messages from the sources exactly as ``python -m unsubsvc.i18n_catalogs``
does (babel.cfg, the same keywords) and compares them with each language's
``messages.po``, and each ``messages.po`` with the ``messages.mo`` Flask-Babel reads.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from unsubsvc import i18n_catalogs
from unsubsvc.i18n_catalogs import MAPPING, REPO, TRANSLATED, po_file
from unsubsvc.web import errors, i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|\{(\w+)\}")

pytestmark = pytest.mark.parametrize("code", TRANSLATED)


def keywords() -> dict[str, Any]:
    """Babel's default keywords plus the ones the catalog command adds."""
    extra: dict[str, Any] = {}
    for spec in i18n_catalogs.KEYWORDS:
        name, _, args = spec.partition(":")
        extra[name] = tuple(int(a) for a in args.split(",")) if args else None
    return {**DEFAULT_KEYWORDS, **extra}


@cache
def source_ids() -> frozenset[str]:
    """Every msgid in the Python sources and templates (singular form)."""
    with MAPPING.open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO), method_map, options_map, keywords=keywords()
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return frozenset(m for m in found if m)


@cache
def catalog(code: str) -> Catalog:
    with po_file(code).open("rb") as handle:
        return read_po(handle, locale=code)


def strings(message: Message) -> tuple[str, ...]:
    value = message.string
    return tuple(map(str, value)) if isinstance(value, (tuple, list)) else (str(value or ""),)


def listing(ids: Iterable[str]) -> str:
    return "\n".join(f"  {msgid!r}" for msgid in sorted(ids))


def test_every_message_is_in_the_catalog(code: str) -> None:
    missing = source_ids() - {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(code)}
    assert not missing, (
        f"{len(missing)} message(s) missing from {po_file(code)}; "
        f"run `python -m unsubsvc.i18n_catalogs` and translate them:\n{listing(missing)}"
    )


def test_every_message_is_translated(code: str) -> None:
    untranslated = [m.id for m in catalog(code) if m.id and not all(strings(m))]
    assert not untranslated, (
        f"{len(untranslated)} empty translation(s) in {po_file(code)}:\n"
        f"{listing(map(str, untranslated))}"
    )


def test_no_translation_is_fuzzy(code: str) -> None:
    fuzzy = [m.id for m in catalog(code) if m.id and m.fuzzy]
    assert not fuzzy, (
        f"{len(fuzzy)} fuzzy translation(s) in {po_file(code)} (check them, then drop the "
        f"'#, fuzzy' flag):\n{listing(map(str, fuzzy))}"
    )


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def test_placeholders_match(code: str) -> None:
    wrong = [
        f"{m.id!r} -> {s!r}"
        for m in catalog(code)
        if m.id and isinstance(m.id, str)
        for s in strings(m)
        if s and placeholders(s) != placeholders(m.id)
    ]
    assert not wrong, f"placeholders differ in {po_file(code)}:\n" + "\n".join(wrong)


def test_compiled_catalog_is_current(code: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalog(code))
    shipped = po_file(code).with_suffix(".mo")
    assert shipped.exists(), f"{shipped} is missing: run `python -m unsubsvc.i18n_catalogs`"
    assert shipped.read_bytes() == compiled.getvalue(), (
        f"{shipped} is older than its .po: run `python -m unsubsvc.i18n_catalogs`"
    )


def test_core_messages_shown_to_recipients_are_marked(code: str) -> None:
    """The pure core cannot import Flask-Babel; the web layer marks its messages instead."""
    from unsubsvc.core import action_links, tokens

    shown = {tokens._INVALID, tokens._NOT_OURS, action_links._INVALID, action_links._EXPIRED}
    shown |= set(errors.MESSAGES.values()) | {errors.UNAVAILABLE_MESSAGE}
    assert shown <= i18n.KNOWN_MESSAGES
    assert i18n.KNOWN_MESSAGES <= source_ids()
