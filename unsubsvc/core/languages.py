"""The languages unsubsvc ships recipient pages and mail in (English is the source language).

Kept in core so the CLI and services can check a list's default language without the web layer.
"""

from __future__ import annotations

from unsubsvc.core.errors import InvalidInput

#: The languages with complete catalogs, English first (the fallback).
LANGUAGES = ("en", "de", "fr", "es")


def check_language(code: str) -> str:
    """Return ``code`` lower-cased if it names a shipped language; refuse anything else."""
    value = code.strip().lower()
    if value not in LANGUAGES:
        raise InvalidInput(f"language is one of {', '.join(LANGUAGES)}, not {code!r}")
    return value


#: Each language named in itself, as a language picker shows it (CLDR names).
NATIVE_NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
