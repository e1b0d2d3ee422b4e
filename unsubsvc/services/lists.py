"""Create and look up lists with their topics and frequencies."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from unsubsvc.core.errors import Conflict, InvalidInput, UnknownList
from unsubsvc.core.languages import check_language
from unsubsvc.core.reporting import NICHE_BENCHMARKS
from unsubsvc.db.models import Frequency, MailingList, Topic

_SLUG = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")


def check_slug(value: str, what: str) -> str:
    """Return ``value`` if it is a usable slug (lowercase letters, digits, - and _)."""
    if not _SLUG.match(value):
        raise InvalidInput(
            f"{what} {value!r} must be 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def create_list(
    session: Session,
    name: str,
    *,
    now: datetime,
    display_name: str | None = None,
    topics: Sequence[str] = (),
    frequencies: Sequence[str] = (),
    niche: str | None = None,
) -> MailingList:
    """Create a list; frequencies are given most frequent first, the first is the default."""
    check_slug(name, "list name")
    check_niche(niche)
    for label, values in (("topic", topics), ("frequency", frequencies)):
        for value in values:
            check_slug(value, label)
        if len(set(values)) != len(values):
            raise InvalidInput(f"a {label} is given twice")
    if session.scalar(select(MailingList.id).where(MailingList.name == name)) is not None:
        raise Conflict(f"list {name!r} already exists")
    mailing_list = MailingList(
        name=name,
        display_name=display_name or name,
        created_at=now,
        topics=[
            Topic(slug=slug, name=slug.replace("-", " ").replace("_", " ").capitalize(), position=i)
            for i, slug in enumerate(topics)
        ],
        frequencies=[Frequency(slug=slug, position=i) for i, slug in enumerate(frequencies)],
        niche=niche,
    )
    session.add(mailing_list)
    session.flush()
    return mailing_list


def check_niche(niche: str | None) -> None:
    """Refuse a benchmark niche unsubsvc has no figures for."""
    if niche is not None and niche not in NICHE_BENCHMARKS:
        raise InvalidInput(f"niche is one of {', '.join(NICHE_BENCHMARKS)}, not {niche!r}")


def set_niche(session: Session, name: str, niche: str | None) -> MailingList:
    """Tag a list with the niche whose benchmark its rates are read against (None clears)."""
    check_niche(niche)
    mailing_list = get_list(session, name)
    mailing_list.niche = niche
    session.flush()
    return mailing_list


def get_list(session: Session, name: str) -> MailingList:
    """Return the list called ``name`` with its topics and frequencies, or raise UnknownList."""
    mailing_list = session.scalar(
        select(MailingList)
        .where(MailingList.name == name)
        .options(selectinload(MailingList.topics), selectinload(MailingList.frequencies))
    )
    if mailing_list is None:
        raise UnknownList(f"unknown list {name!r}")
    return mailing_list


def all_lists(session: Session) -> list[MailingList]:
    """Return every list, by name."""
    return list(session.scalars(select(MailingList).order_by(MailingList.name)))


def find_topic(mailing_list: MailingList, slug: str) -> Topic:
    """Return the list's topic called ``slug`` or raise InvalidInput."""
    for topic in mailing_list.topics:
        if topic.slug == slug:
            return topic
    known = ", ".join(t.slug for t in mailing_list.topics) or "none"
    raise InvalidInput(f"list {mailing_list.name!r} has no topic {slug!r} (topics: {known})")


#: Longest topic description we store (shown under the topic's checkbox).
MAX_TOPIC_DESCRIPTION = 500


def parse_topic_descriptions(values: Sequence[str]) -> dict[str, str]:
    """Split ``SLUG=TEXT`` pairs (an empty TEXT clears a description)."""
    parsed: dict[str, str] = {}
    for value in values:
        slug, sep, text = value.partition("=")
        if not sep:
            raise InvalidInput(f"topic description {value!r} must be SLUG=TEXT")
        text = " ".join(text.split())
        if len(text) > MAX_TOPIC_DESCRIPTION:
            raise InvalidInput(
                f"topic description for {slug!r} is over {MAX_TOPIC_DESCRIPTION} characters"
            )
        parsed[slug.strip()] = text
    return parsed


def update_list(
    session: Session,
    mailing_list: MailingList,
    *,
    topic_descriptions: Sequence[str] = (),
    language: str | None = None,
) -> MailingList:
    """Set topic descriptions (``SLUG=TEXT``) and the list's default language."""
    for slug, text in parse_topic_descriptions(topic_descriptions).items():
        find_topic(mailing_list, slug).description = text or None
    if language is not None:
        mailing_list.default_locale = check_language(language)
    session.flush()
    return mailing_list
