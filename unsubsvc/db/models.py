"""Typed models: data only. Rules live in ``unsubsvc.core``, use cases in ``unsubsvc.services``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from unsubsvc.db.base import Base

#: SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class MailingList(Base):
    """An audience a sender mails, with its topics and its frequency options."""

    __tablename__ = "mailing_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    #: Benchmark niche (a key of ``core.reporting.NICHE_BENCHMARKS``), shown beside rates.
    niche: Mapped[str | None] = mapped_column(String(32))
    #: The language of its pages and mail when neither the link, the recipient's
    #: stored choice nor the browser names one we have (a locale code: ``de``).
    default_locale: Mapped[str | None] = mapped_column(String(16))
    #: Branding shown on every recipient page and mail of the list (None: the defaults).
    #: ``#rrggbb``, checked for WCAG AA contrast when set.
    brand_color: Mapped[str | None] = mapped_column(String(7))
    brand_sender_name: Mapped[str | None] = mapped_column(String(200))
    #: The sender's postal address or other footer text (CAN-SPAM asks for one).
    brand_footer: Mapped[str | None] = mapped_column(Text)
    brand_privacy_url: Mapped[str | None] = mapped_column(String(2000))

    topics: Mapped[list[Topic]] = relationship(
        back_populates="mailing_list", order_by="Topic.position", cascade="all, delete-orphan"
    )
    frequencies: Mapped[list[Frequency]] = relationship(
        back_populates="mailing_list", order_by="Frequency.position", cascade="all, delete-orphan"
    )


class Topic(Base):
    """A subject within a list that a recipient can opt out of on its own."""

    __tablename__ = "topic"
    __table_args__ = (UniqueConstraint("list_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: One sentence shown under the topic's toggle in the preference center.
    description: Mapped[str | None] = mapped_column(Text)

    mailing_list: Mapped[MailingList] = relationship(back_populates="topics")


class Frequency(Base):
    """A cadence a list offers; position 0 is the most frequent and the default."""

    __tablename__ = "frequency"
    __table_args__ = (UniqueConstraint("list_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)

    mailing_list: Mapped[MailingList] = relationship(back_populates="frequencies")


class Subscriber(Base):
    """A recipient address, known by a random public id that tokens carry instead."""

    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    #: The address as first given.
    email: Mapped[str] = mapped_column(String(254))
    #: The case-folded address that lookups match on.
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    created_at: Mapped[datetime]
    #: Set while the subscriber has left every list of this sender at once.
    unsubscribed_all_at: Mapped[datetime | None]
    #: The language the recipient chose on one of our pages (a locale code), if any.
    locale: Mapped[str | None] = mapped_column(String(16))


class Subscription(Base):
    """A subscriber's standing on one list; a missing row means subscribed with defaults."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("list_id", "subscriber_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    frequency_id: Mapped[int | None] = mapped_column(
        ForeignKey("frequency.id", ondelete="SET NULL")
    )
    paused_until: Mapped[datetime | None]
    #: When the subscriber joined this list: the signup cohort.
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Set while bounces suppress the address on this list (``core.suppression``): not the
    #: recipient's choice, so ``subscribed`` stays as it was. A resubscribe or
    #: ``unsubsvc bounce clear`` ends it.
    bounced_at: Mapped[datetime | None]
    #: When a bounce suppression was last cleared: soft bounces before it no longer count.
    bounce_cleared_at: Mapped[datetime | None]

    opt_outs: Mapped[list[TopicOptOut]] = relationship(cascade="all, delete-orphan")


class TopicOptOut(Base):
    """One topic of a list that a subscriber asked not to receive."""

    __tablename__ = "topic_opt_out"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(
        ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime]


class Campaign(Base):
    """One send of a list, named by the sender's own campaign id."""

    __tablename__ = "campaign"
    __table_args__ = (UniqueConstraint("list_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    #: Why a spike here is expected (a pivot, an acquired list, a sunset): no alarm raised.
    excuse: Mapped[str | None] = mapped_column(String(200))


class Event(Base):
    """An append-only record of what happened, to whom, where and how; reports read it."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_list_id_occurred_at", "list_id", "occurred_at"),
        Index("ix_event_campaign_id_kind", "campaign_id", "kind"),
        Index("ix_event_feed_key_id", "feed_key", "id"),
        Index("ix_event_subscriber_id_feed_key", "subscriber_id", "feed_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topic.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: On PostgreSQL, where the event sorts in feeds: at least the id of the transaction that
    #: wrote it (``pg_current_xact_id()``), raised past the subscriber's previous event
    #: (``services.feed`` says why). SQLite runs one writer at a time, so there ids alone
    #: follow commit order and this stays NULL. A column default (``FEED_KEY_DEFAULT``)
    #: fills it for every writer on PostgreSQL.
    feed_key: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())


#: The feed_key column default on PostgreSQL: xid8 has no cast to bigint, text has.
FEED_KEY_DEFAULT = "pg_current_xact_id()::text::bigint"

sa_event.listen(
    Event.__table__,
    "after_create",
    DDL(f"ALTER TABLE event ALTER COLUMN feed_key SET DEFAULT {FEED_KEY_DEFAULT}").execute_if(  # type: ignore[no-untyped-call]
        dialect="postgresql"
    ),
)


class SurveyResponse(Base):
    """An optional exit-survey answer, attached to the unsubscribe it explains."""

    __tablename__ = "survey_response"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("event.id", ondelete="CASCADE"),
        unique=True,
    )
    reason: Mapped[str | None] = mapped_column(String(32))
    #: Free text exactly as typed (bounded); escaped wherever it is shown.
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApiKey(Base):
    """A sender's credential for ``/api/v1``; only a hash of the secret is kept."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: The public part of the key, to find the row without comparing secrets.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Delivery(Base):
    """A count of messages of a campaign that reached recipients; parts add up."""

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    count: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime | None]
    segment: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]


class Webhook(Base):
    """An endpoint told of every change, with the secret its payloads are signed with."""

    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: The signing secret, encrypted with the webhook-secrets key (``core.secret_box``).
    secret: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    #: When deliveries to it started failing without a success since; None while it works.
    failing_since: Mapped[datetime | None]
    #: After a rotation, the secret it replaced (encrypted like ``secret``): deliveries carry
    #: a signature with each until ``previous_secret_until``, so receivers can switch over.
    previous_secret: Mapped[str | None] = mapped_column(String(500))
    previous_secret_until: Mapped[datetime | None]


class WebhookDelivery(Base):
    """The outbox: one event owed to one endpoint, written in the change's own transaction."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_pending", "webhook_id", "delivered_at", "next_attempt_at"),
        # The deliverer asks "is an earlier row of this recipient still owed?" for each row.
        Index("ix_webhook_delivery_order", "webhook_id", "subscriber_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("event.id", ondelete="CASCADE")
    )
    #: Events of one subscriber are delivered in order; this is what orders them.
    subscriber_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite")
    )
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: A deliverer's claim on the row: others leave it alone until the lease runs out,
    #: so no row lock is held across the HTTP call.
    leased_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))


class WebhookAttempt(Base):
    """One try at delivering an outbox row, kept for the record."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"),
        index=True,
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)


class CampaignStats(Base):
    """Running totals per campaign, kept in the transaction of each event or delivery.

    Reports read these (a few rows per campaign, summed) instead of scanning the event log;
    ``services.reports.recount`` rebuilds them from the log to check.
    """

    __tablename__ = "campaign_stats"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    #: Concurrent events of one campaign add to different rows (``services.counters``):
    #: one row per campaign would make every unsubscribe of a send wait for the one before.
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=0)
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Distinct subscribers who unsubscribed through this campaign's links.
    unsubscribes: Mapped[int] = mapped_column(Integer, default=0)
    complaints: Mapped[int] = mapped_column(Integer, default=0)
    bounces: Mapped[int] = mapped_column(Integer, default=0)
    #: Downgrades, pauses and topic opt-outs in the preference center: kept, not lost.
    saves: Mapped[int] = mapped_column(Integer, default=0)
    resubscribes: Mapped[int] = mapped_column(Integer, default=0)


class CampaignUnsubscriber(Base):
    """Who already counted as an unsubscribe of a campaign: a second one counts no more."""

    __tablename__ = "campaign_unsubscriber"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    subscriber_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("subscriber.id", ondelete="CASCADE"),
        primary_key=True,
    )


class AdminUser(Base):
    """Someone who may read the reports; the password is kept as a scrypt hash."""

    __tablename__ = "admin_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    #: Wrong passwords since the last sign-in; enough of them lock the account for a while.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]


class AdminSession(Base):
    """A signed-in browser: the cookie holds a random id, this table only its hash.

    Ending the row (logout, revoke, timeout) ends the session whatever the
    browser still holds.
    """

    __tablename__ = "admin_session"

    #: SHA-256 of the cookie's session id, hex: a database leak gives no live cookie.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[int] = mapped_column(
        ForeignKey("admin_user.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    #: The client address it signed in from.
    client: Mapped[str | None] = mapped_column(String(64))


class AuditEvent(Base):
    """An append-only record of an admin, API or CLI action, or a refused sign-in.

    Never holds a recipient's address: recipients are named by keyed hash, so
    erasing an address leaves nothing here to find.
    """

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_occurred_at", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime]
    #: ``admin``, ``api``, ``cli`` or ``anonymous``.
    actor_kind: Mapped[str] = mapped_column(String(16))
    #: The admin's address, the API key's name, the CLI's user, or what was tried.
    actor: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(300))
    #: The client address (or ``cli``).
    client: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ErasedAddress(Base):
    """An erased address, kept only as a keyed hash so that it is never mailed again."""

    __tablename__ = "erased_address"

    #: ``Keyring.address_hash`` of the case-folded address.
    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime]


class ListLogo(Base):
    """A list's logo, stored here and served by unsubsvc itself (the CSP allows no other origin).

    In the database rather than on disk, so every app server behind a load
    balancer serves the same file.
    """

    __tablename__ = "list_logo"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("mailing_list.id", ondelete="CASCADE"), primary_key=True
    )
    #: ``image/png``, ``image/jpeg``, ``image/gif`` or ``image/webp`` (sniffed, not trusted).
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256 of ``data``, hex: the URL and ETag change when the logo does.
    sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class OutgoingMail(Base):
    """Mail unsubsvc sends itself (sign-in links, resubscribe confirmations): a durable outbox.

    Written in the same transaction as the change that asks for it, delivered over
    SMTP afterwards with retries, like webhooks. The rendered message holds a
    link that is a credential: it is cleared once the message is sent, and rows
    are purged after the retention period.
    """

    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_mail_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: What it is (``manage-link``, ``resubscribe-confirm``): for logs and the admin.
    kind: Mapped[str] = mapped_column(String(32))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    #: The envelope recipient (RFC 5321 RCPT TO).
    recipient: Mapped[str] = mapped_column(String(254))
    #: The whole RFC 5322 message, CRLF line ends, as it goes on the wire; empty once sent.
    message: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    #: Set when it will not be tried again (a permanent SMTP refusal, or too many attempts).
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    leased_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))


class UsedLink(Base):
    """A single-use link that was followed: its nonce, so that it cannot be followed again."""

    __tablename__ = "used_link"

    #: SHA-256 of the link's nonce, hex.
    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime]
    #: After this the link has expired anyway, and the row can be purged.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class EspEventSeen(Base):
    """An ESP event already recorded: the same report delivered again is not recorded twice."""

    __tablename__ = "esp_event_seen"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: The provider's event id (SHA-256 hex when longer than the column).
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
