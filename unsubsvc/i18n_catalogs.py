"""Extract, update and compile the translation catalogs in one command.

    python -m unsubsvc.i18n_catalogs            # extract → update → compile
    python -m unsubsvc.i18n_catalogs --check    # only report untranslated entries (exit 1)

Run it from the repository root after changing any user-visible string; then
translate the empty ``msgstr`` entries in ``unsubsvc/translations/*/LC_MESSAGES/messages.po``
and run it again to compile. New strings arrive untranslated (no fuzzy matching):
``tests/unit/test_catalogs.py`` fails until every one is translated.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from unsubsvc.core.languages import LANGUAGES

REPO = Path(__file__).resolve().parent.parent
TRANSLATIONS = REPO / "unsubsvc" / "translations"
MAPPING = TRANSLATIONS / "babel.cfg"
TEMPLATE = TRANSLATIONS / "messages.pot"
#: Besides Babel's defaults (``_``, ``gettext``, ``ngettext``, ``N_``, …).
KEYWORDS = ("lazy_gettext", "lazy_ngettext:1,2", "_l")
#: English is the source language: it needs no catalog.
TRANSLATED = tuple(code for code in LANGUAGES if code != "en")


def pybabel(*args: str) -> None:
    """Run one ``pybabel`` command through Babel's own command-line front end."""
    CommandLineInterface().run(["pybabel", "--quiet", *args])  # type: ignore[no-untyped-call]


def po_file(code: str) -> Path:
    """Return the catalog of language ``code``."""
    return TRANSLATIONS / code / "LC_MESSAGES" / "messages.po"


def extract() -> None:
    """Write messages.pot from the Python sources and the templates."""
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    # From the repository root, so the catalogs name files relative to it.
    with contextlib.chdir(REPO):
        pybabel(
            "extract",
            "-F",
            str(MAPPING),
            *keywords,
            "--project=unsubsvc",
            "--sort-by-file",
            "--no-wrap",
            "-o",
            str(TEMPLATE),
            ".",
        )


def update() -> None:
    """Merge messages.pot into every catalog, creating missing ones."""
    for code in TRANSLATED:
        if not po_file(code).exists():
            pybabel("init", "-i", str(TEMPLATE), "-d", str(TRANSLATIONS), "-l", code, "--no-wrap")
    # No fuzzy matching: a guessed translation is worse than an empty one the check catches.
    pybabel(
        "update",
        "-i",
        str(TEMPLATE),
        "-d",
        str(TRANSLATIONS),
        "--no-fuzzy-matching",
        "--no-wrap",
        "--ignore-obsolete",
    )


def compile_catalogs() -> None:
    """Compile every catalog to the messages.mo Flask-Babel reads."""
    pybabel("compile", "-d", str(TRANSLATIONS), "--statistics")


def untranslated() -> dict[str, list[str]]:
    """Return, per language, the msgids still without a translation."""
    missing: dict[str, list[str]] = {}
    for code in TRANSLATED:
        with po_file(code).open("rb") as handle:
            catalog = read_po(handle)
        missing[code] = [
            str(message.id)
            for message in catalog
            if message.id and (message.fuzzy or not all(_strings(message.string)))
        ]
    return missing


def _strings(value: object) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, tuple) else (str(value or ""),)


def main(argv: list[str] | None = None) -> int:
    """Extract → update → compile (or, with ``--check``, only list what is untranslated)."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" not in args:
        extract()
        update()
        compile_catalogs()
    missing = untranslated()
    for code, ids in missing.items():
        for msgid in ids:
            print(f"{code}: untranslated: {msgid!r}", file=sys.stderr)
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
