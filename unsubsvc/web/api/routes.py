"""The operations of ``/api/v1``: thin handlers over the services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, g, jsonify
from pydantic import BaseModel

from unsubsvc.core.addresses import normalize_address
from unsubsvc.core.errors import NotFound
from unsubsvc.core.headers import LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST
from unsubsvc.core.preferences import Verdict
from unsubsvc.core.suppression import SuppressionPolicy
from unsubsvc.db.models import MailingList
from unsubsvc.services import audit, batch, erasure, feed, senders, webhooks
from unsubsvc.services import lists as list_service
from unsubsvc.services.recipient_export import export_document, export_recipient
from unsubsvc.services.status import status_document
from unsubsvc.web import context, limits
from unsubsvc.web.api import schemas as s
from unsubsvc.web.api.blueprint import PREFIX, api
from unsubsvc.web.context import session

#: Integer ids are 32-bit in the database; a larger one names nothing.
MAX_ID = 2**31 - 1


def list_out(mailing_list: MailingList) -> s.ListOut:
    return s.ListOut(
        name=mailing_list.name,
        display_name=mailing_list.display_name,
        topics=[s.TopicOut(slug=t.slug, name=t.name) for t in mailing_list.topics],
        frequencies=[f.slug for f in mailing_list.frequencies],
    )


def status_out(name: str, email: str) -> s.StatusOut:
    keyring = context.runtime().keyring
    document = status_document(session(), name, email, now=context.now(), keyring=keyring)
    return s.StatusOut(**document)


def _require(body: BaseModel, model: type[Any]) -> Any:
    if not isinstance(body, model):  # pragma: no cover - the registry guarantees it
        raise TypeError(model)
    return body


@api.route("/openapi.json", "GET", summary="This document", public=True)
def openapi_document() -> Response:
    return jsonify(api.openapi(PREFIX))


@api.route("/lists", "GET", summary="Every list", response=s.ListsOut)
def get_lists() -> s.ListsOut:
    return s.ListsOut(lists=[list_out(m) for m in list_service.all_lists(session())])


@api.route(
    "/lists",
    "POST",
    summary="Create a list with its topics and frequencies",
    status=201,
    body=s.ListCreate,
    response=s.ListOut,
    errors={409: "A list with that name exists"},
)
def create_list(body: BaseModel) -> s.ListOut:
    data = _require(body, s.ListCreate)
    created = list_service.create_list(
        session(),
        data.name,
        now=context.now(),
        display_name=data.display_name,
        topics=data.topics,
        frequencies=data.frequencies,
    )
    return list_out(list_service.get_list(session(), created.name))


@api.route("/lists/<name>", "GET", summary="A list's topics and frequencies", response=s.ListOut)
def get_list(name: str) -> s.ListOut:
    return list_out(list_service.get_list(session(), name))


@api.route(
    "/lists/<name>/headers",
    "POST",
    summary="List-Unsubscribe headers for up to 10,000 recipients",
    body=s.HeadersIn,
    response=s.HeadersOut,
)
def headers(name: str, body: BaseModel) -> s.HeadersOut:
    data = _require(body, s.HeadersIn)
    mailing_list = list_service.get_list(session(), name)
    recipients = [
        batch.Recipient(r.email, r.campaign or data.campaign, r.topic) for r in data.recipients
    ]
    links = batch.batch_links(
        session(),
        context.minter(),
        mailing_list,
        recipients,
        now=context.now(),
        keyring=context.runtime().keyring,
    )
    out = []
    erased = []
    for recipient, link in zip(recipients, links, strict=True):
        if link is None:
            erased.append(recipient.email)
            continue
        values = dict(link.headers)
        out.append(
            # Strings we just made: validating 10,000 of them was a quarter of the call.
            s.HeaderSet.model_construct(
                email=recipient.email,
                list_unsubscribe=values[LIST_UNSUBSCRIBE],
                list_unsubscribe_post=values[LIST_UNSUBSCRIBE_POST],
                unsubscribe_url=link.unsubscribe_url,
                preferences_url=link.preferences_url,
            )
        )
    return s.HeadersOut(recipients=out, erased=erased)


@api.route(
    "/lists/<name>/recipients/<address:email>",
    "GET",
    summary="A recipient's state",
    response=s.StatusOut,
)
def recipient(name: str, email: str) -> s.StatusOut:
    return status_out(name, email)


@api.route(
    "/lists/<name>/eligibility",
    "POST",
    summary="Which addresses may be mailed now (filter a send in one call)",
    body=s.EligibilityIn,
    response=s.EligibilityOut,
)
def eligibility(name: str, body: BaseModel) -> s.EligibilityOut:
    data = _require(body, s.EligibilityIn)
    mailing_list = list_service.get_list(session(), name)
    verdicts = batch.eligibility(
        session(),
        mailing_list,
        data.emails,
        now=context.now(),
        keyring=context.runtime().keyring,
        topic=data.topic,
        cadence=data.cadence,
        transactional=data.transactional,
    )
    return s.EligibilityOut(
        eligible=[email for email, verdict in verdicts if verdict is Verdict.OK],
        excluded=[
            s.Excluded(email=email, reason=verdict)
            for email, verdict in verdicts
            if verdict is not Verdict.OK
        ],
    )


@api.route(
    "/lists/<name>/recipients/<address:email>/unsubscribe",
    "POST",
    summary="Unsubscribe an address from the list or one topic (channel api)",
    body=s.UnsubscribeIn,
    response=s.ChangeOut,
)
def unsubscribe(name: str, email: str, body: BaseModel) -> s.ChangeOut:
    data = _require(body, s.UnsubscribeIn)
    mailing_list = list_service.get_list(session(), name)
    outcome = senders.unsubscribe_address(
        session(),
        mailing_list,
        email,
        now=context.now(),
        keyring=context.runtime().keyring,
        topic=data.topic,
        campaign=data.campaign,
    )
    return s.ChangeOut(changed=outcome.changed, status=status_out(name, email))


@api.route(
    "/lists/<name>/recipients/<address:email>/resubscribe",
    "POST",
    summary="Resubscribe an address, with the reason it may be mailed again",
    body=s.ResubscribeIn,
    response=s.ChangeOut,
    errors={409: "The address was erased: it stays suppressed"},
)
def resubscribe(name: str, email: str, body: BaseModel) -> s.ChangeOut:
    data = _require(body, s.ResubscribeIn)
    mailing_list = list_service.get_list(session(), name)
    outcome = senders.resubscribe_address(
        session(),
        mailing_list,
        email,
        now=context.now(),
        keyring=context.runtime().keyring,
        reason=data.reason,
        topic=data.topic,
    )
    return s.ChangeOut(changed=outcome.changed, status=status_out(name, email))


@api.route(
    "/lists/<name>/campaigns/<path:campaign>/deliveries",
    "POST",
    summary="Record delivered messages of a campaign (parts add up)",
    status=201,
    body=s.DeliveryIn,
    response=s.DeliveryOut,
)
def deliveries(name: str, campaign: str, body: BaseModel) -> s.DeliveryOut:
    data = _require(body, s.DeliveryIn)
    mailing_list = list_service.get_list(session(), name)
    total = senders.record_delivery(
        session(),
        mailing_list,
        campaign,
        data.count,
        now=context.now(),
        sent_at=data.sent_at,
        segment=data.segment,
        source=data.source,
    )
    return s.DeliveryOut(campaign=total.campaign, delivered=total.delivered)


@api.route(
    "/lists/<name>/bounces",
    "POST",
    summary="Record a bounce for a recipient",
    body=s.BounceIn,
    response=s.RecordedOut,
)
def bounce(name: str, body: BaseModel) -> s.RecordedOut:
    data = _require(body, s.BounceIn)
    mailing_list = list_service.get_list(session(), name)
    senders.record_bounce(
        session(),
        mailing_list,
        data.email,
        now=context.now(),
        keyring=context.runtime().keyring,
        hard=data.type == "hard",
        campaign=data.campaign,
        policy=SuppressionPolicy.from_settings(context.settings()),
    )
    return s.RecordedOut(recorded=True)


@api.route(
    "/lists/<name>/complaints",
    "POST",
    summary="Record a spam complaint; the address is unsubscribed from the list",
    body=s.ComplaintIn,
    response=s.RecordedOut,
)
def complaint(name: str, body: BaseModel) -> s.RecordedOut:
    data = _require(body, s.ComplaintIn)
    mailing_list = list_service.get_list(session(), name)
    outcome = senders.record_complaint(
        session(),
        mailing_list,
        data.email,
        now=context.now(),
        keyring=context.runtime().keyring,
        campaign=data.campaign,
        policy=SuppressionPolicy.from_settings(context.settings()),
    )
    return s.RecordedOut(recorded=outcome.changed)


@api.route(
    "/suppressions",
    "GET",
    summary="Unsubscribes and resubscribes in commit order, paged by cursor",
    query=s.SuppressionQuery,
    response=s.SuppressionsOut,
)
def suppressions(query: BaseModel) -> s.SuppressionsOut:
    data = _require(query, s.SuppressionQuery)
    mailing_list = list_service.get_list(session(), data.list) if data.list else None
    page = feed.suppression_changes(
        session(), mailing_list=mailing_list, since=data.since, cursor=data.cursor, limit=data.limit
    )
    return s.SuppressionsOut(
        changes=[s.SuppressionChange(**change) for change in page.changes],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


@api.route("/webhooks", "GET", summary="Endpoints told of every change", response=s.WebhooksOut)
def get_webhooks() -> s.WebhooksOut:
    return s.WebhooksOut(
        webhooks=[
            s.WebhookOut(
                id=e.id,
                url=e.url,
                active=e.active,
                pending=e.pending,
                failing_since=e.failing_since,
                disabled_at=e.disabled_at,
                disabled_reason=e.disabled_reason,
                previous_secret_until=e.previous_secret_until,
            )
            for e in webhooks.list_endpoints(session(), now=context.now())
        ]
    )


@api.route(
    "/webhooks",
    "POST",
    summary="Register an endpoint; its signing secret is returned once",
    status=201,
    body=s.WebhookIn,
    response=s.WebhookCreated,
    errors={409: "UNSUBSVC_WEBHOOK_MAX_ENDPOINTS endpoints are active already"},
)
def add_webhook(body: BaseModel) -> s.WebhookCreated:
    data = _require(body, s.WebhookIn)
    rt = context.runtime()
    hook, secret = webhooks.add_endpoint(
        session(),
        data.url,
        now=context.now(),
        keyring=rt.keyring,
        policy=webhooks.url_policy(rt.settings),
        max_endpoints=rt.settings.webhook_max_endpoints,
    )
    return s.WebhookCreated(id=hook.id, url=hook.url, active=True, pending=0, secret=secret)


@api.route(
    "/webhooks/<int:webhook_id>/rotate",
    "POST",
    summary="Give an endpoint a new signing secret, returned once; the old one signs too "
    "for the overlap",
    query=s.WebhookRotateQuery,
    response=s.WebhookRotated,
)
def rotate_webhook(webhook_id: int, query: BaseModel) -> s.WebhookRotated:
    if webhook_id > MAX_ID:
        raise NotFound(f"no webhook with id {webhook_id}")
    data = _require(query, s.WebhookRotateQuery)
    hook, secret = webhooks.rotate_secret(
        session(),
        webhook_id,
        now=context.now(),
        keyring=context.runtime().keyring,
        overlap=timedelta(hours=data.overlap_hours),
    )
    return s.WebhookRotated(
        id=hook.id, url=hook.url, secret=secret, previous_secret_until=hook.previous_secret_until
    )


@api.route(
    "/webhooks/<int:webhook_id>",
    "DELETE",
    summary="Stop sending to an endpoint (undelivered events stay, unsent)",
    status=204,
)
def disable_webhook(webhook_id: int) -> None:
    if webhook_id > MAX_ID:
        raise NotFound(f"no webhook with id {webhook_id}")
    webhooks.disable_endpoint(session(), webhook_id, now=context.now())


# -- data rights: one address's export and erasure (services.recipient_export, services.erasure)


def _audit_recipient(action: str, address: str, detail: dict[str, Any]) -> None:
    """Record a data-rights call under the API key's name, the address as a keyed hash."""
    audit.record(
        session(),
        now=context.now(),
        actor_kind=audit.API,
        actor=g.api_key.name,
        action=action,
        target=audit.describe_target({"email": address}, context.runtime().keyring.address_hash),
        client=limits.client_address(),
        detail=detail,
    )


@api.route(
    "/recipients/<address:email>",
    "DELETE",
    summary="Erase everything held about an address; it stays suppressed (unknown: recorded too)",
    response=s.ErasureOut,
)
def erase_recipient(email: str) -> s.ErasureOut:
    address = normalize_address(email)
    summary = erasure.erase(session(), context.runtime().keyring, address, now=context.now())
    _audit_recipient("recipient.erase", address, {"already_erased": summary.already_erased})
    return s.ErasureOut(erased=True, summary=summary)


@api.route(
    "/recipients/<address:email>/export",
    "GET",
    summary="Everything held about an address, as one document",
    response=s.RecipientExportOut,
)
def recipient_export(email: str) -> s.RecipientExportOut:
    exported = export_recipient(session(), context.runtime().keyring, email, now=context.now())
    _audit_recipient("recipient.export", exported.address, {"held": exported.held})
    return s.RecipientExportOut.model_validate(export_document(exported))
