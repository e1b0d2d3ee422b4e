"""Amazon SES through SNS at ``POST /inbound/ses``.

Every message is checked against SNS's signature before anything else is done
with it; the certificate is fetched (once per URL per process) only from an SNS
host. ``fetch_url`` is module-level so tests can serve certificates they made.
"""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

from flask import Response, jsonify, request

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.core.esp_events import SignatureRejected
from unsubsvc.core.esp_ses import (
    MESSAGE_TYPE_HEADER,
    NOTIFICATION,
    SUBSCRIPTION_CONFIRMATION,
    CertificateCache,
    is_sns_url,
    parse_notification,
    parse_sns,
    topic_allowed,
    verify,
)
from unsubsvc.web import context
from unsubsvc.web.esp import bp
from unsubsvc.web.esp.inbound_body import json_error, read_body, record_events

__all__ = ["bp"]

log = logging.getLogger(__name__)

#: Seconds to wait for SNS when fetching a certificate or confirming a subscription.
FETCH_TIMEOUT = 5
#: A certificate or a confirmation answer is a few KiB; read no more than this.
MAX_FETCH = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the URL checked is the URL fetched."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch_url(url: str) -> bytes:
    """GET ``url`` (already checked to be https on an SNS host) and return the body."""
    if not is_sns_url(url, certificate=False):  # defence in depth; callers check first
        raise ValueError("not an SNS URL")
    with _OPENER.open(url, timeout=FETCH_TIMEOUT) as answer:  # noqa: S310 - https, SNS host
        body: bytes = answer.read(MAX_FETCH)
        return body


#: SNS signing certificates by URL, for this process (looked up through ``fetch_url``).
CERTIFICATES = CertificateCache(lambda url: fetch_url(url))


@bp.post("/ses")
def ses() -> tuple[Response, int]:
    try:
        message = parse_sns(read_body(), request.headers.get(MESSAGE_TYPE_HEADER))
        settings = context.settings()
        if not topic_allowed(message.topic_arn, settings.ses_topic_arns):
            raise SignatureRejected("this SNS topic is not accepted here")
        verify(message, CERTIFICATES, now=context.now())
        if message.type == SUBSCRIPTION_CONFIRMATION:
            url = message.subscribe_url or ""
            if not is_sns_url(url, certificate=False):
                raise SignatureRejected("the SubscribeURL is not on an SNS host")
            try:
                fetch_url(url)
            except (OSError, ValueError):
                log.warning("confirming the SNS subscription to %s failed", message.topic_arn)
                return jsonify(error="could not confirm the subscription"), 502
            log.info("confirmed the SNS subscription to %s", message.topic_arn)
            return jsonify(confirmed=True), 200
        if message.type != NOTIFICATION:  # UnsubscribeConfirmation: nothing to do
            return jsonify(recorded=0), 200
        notification = parse_notification(message.message, message.message_id)
        return record_events(notification.events)
    except UnsubsvcError as exc:
        return json_error(exc)
