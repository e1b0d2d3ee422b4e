"""Set and read a list's brand: sender name, accent colour, footer, privacy link and logo.

Every value is checked by ``core.branding`` before it is stored; callers record the
change in the audit log (the CLI's unit of work does so for commands, the admin page itself).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from unsubsvc.core.branding import (
    Brand,
    check_accent,
    check_footer,
    check_logo,
    check_privacy_url,
    check_sender_name,
)
from unsubsvc.db.models import ListLogo, MailingList
from unsubsvc.settings import Settings

#: Marks "leave this field as it is" (None means "clear it").
KEEP = object()


@dataclass(frozen=True)
class BrandChange:
    """What a set_brand call changed: field names, for the audit log (never the values of files)."""

    fields: tuple[str, ...]


#: Bumped when ``web.branding.brand_css`` changes, so cached stylesheets are not reused.
STYLESHEET_VERSION = "1"


def stylesheet_key(color: str | None) -> str:
    """Return the content key of a list's stylesheet: it changes when the colour does."""
    return hashlib.sha256(f"{STYLESHEET_VERSION}:{color or ''}".encode()).hexdigest()[:16]


def logo(session: Session, list_id: int) -> ListLogo | None:
    """Return a list's stored logo, if any."""
    return session.get(ListLogo, list_id)


def set_brand(
    session: Session,
    mailing_list: MailingList,
    *,
    now: datetime,
    sender_name: object = KEEP,
    color: object = KEEP,
    footer: object = KEEP,
    privacy_url: object = KEEP,
    logo_data: object = KEEP,
) -> BrandChange:
    """Check and store the given fields (``None`` clears one); return which changed.

    Raises ``core.branding.BrandError`` before changing anything if a value is refused.
    """
    updates: dict[str, str | None] = {}
    if sender_name is not KEEP:
        updates["brand_sender_name"] = _checked(sender_name, check_sender_name)
    if color is not KEEP:
        updates["brand_color"] = _checked(color, check_accent)
    if footer is not KEEP:
        updates["brand_footer"] = _checked(footer, check_footer) or None
    if privacy_url is not KEEP:
        updates["brand_privacy_url"] = _checked(privacy_url, check_privacy_url)
    checked_logo = None
    if logo_data is not KEEP and logo_data is not None:
        if not isinstance(logo_data, bytes):
            raise TypeError("logo_data must be bytes or None")
        checked_logo = check_logo(logo_data)

    changed = [
        column.removeprefix("brand_")
        for column, value in updates.items()
        if getattr(mailing_list, column) != value
    ]
    for column, value in updates.items():
        setattr(mailing_list, column, value)
    if logo_data is not KEEP:
        stored = logo(session, mailing_list.id)
        if checked_logo is None:
            if stored is not None:
                session.delete(stored)
                changed.append("logo")
        else:
            digest = hashlib.sha256(checked_logo.data).hexdigest()
            if stored is None:
                session.add(
                    ListLogo(
                        list_id=mailing_list.id,
                        content_type=checked_logo.content_type,
                        data=checked_logo.data,
                        sha256=digest,
                        updated_at=now,
                    )
                )
                changed.append("logo")
            elif stored.sha256 != digest:
                stored.content_type = checked_logo.content_type
                stored.data = checked_logo.data
                stored.sha256 = digest
                stored.updated_at = now
                changed.append("logo")
    session.flush()
    return BrandChange(fields=tuple(changed))


def _checked(value: object, check: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not callable(check):
        raise TypeError("brand values are strings or None")
    result: str = check(value)
    return result


def brand_for(session: Session, mailing_list: MailingList | None, *, settings: Settings) -> Brand:
    """Return the brand a list's recipients see; defaults come from the settings.

    URLs are paths on unsubsvc itself (``/brand/…``), the only origin the CSP allows.
    """
    if mailing_list is None:
        return Brand(sender_name=settings.sender_name)
    stored = logo(session, mailing_list.id)
    color = mailing_list.brand_color
    return Brand(
        sender_name=mailing_list.brand_sender_name or settings.sender_name,
        color=color,
        footer=mailing_list.brand_footer,
        privacy_url=mailing_list.brand_privacy_url,
        logo_url=(
            None if stored is None else f"/brand/{mailing_list.id}/logo-{stored.sha256[:16]}"
        ),
        stylesheet_url=(
            None
            if color is None and stored is None
            else f"/brand/{mailing_list.id}/{stylesheet_key(color)}.css"
        ),
    )
