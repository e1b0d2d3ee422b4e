"""The OpenAPI document matches the routes, and a property-based run finds no 5xx or drift."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import ApiClient
from tests.helpers import make_list


def test_document_is_public_and_lists_every_api_route(app: Flask) -> None:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document is not None
    assert document["openapi"].startswith("3.1")
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            placeholder = "{" + argument + "}"
            for converter in ("int:", "path:", "address:", ""):
                path = path.replace(f"<{converter}{argument}>", placeholder)
        routed |= {(path, m) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert documented == routed
    # Every operation but the document itself requires the bearer key.
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


#: operationIds are the generated clients' function names: renaming one breaks callers.
OPERATION_IDS = {
    "openapi_document", "get_lists", "create_list", "get_list", "headers", "eligibility",
    "recipient", "unsubscribe", "resubscribe", "deliveries", "bounce", "complaint",
    "suppressions", "get_webhooks", "add_webhook", "disable_webhook", "erase_recipient",
    "recipient_export",
}  # fmt: skip


def _document(app: Flask) -> dict[str, Any]:
    document = app.test_client().get("/api/v1/openapi.json").json
    assert isinstance(document, dict)
    return document


def test_operations_keep_their_ids_and_have_declared_tags(app: Flask) -> None:
    document = _document(app)
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert {"lists", "recipients", "deliveries", "suppressions", "webhooks"} <= set(tags)
    assert all(tags.values())
    ids = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            ids.add(operation["operationId"])
            assert len(operation["tags"]) == 1 and operation["tags"][0] in tags
    assert ids >= OPERATION_IDS
    paths = document["paths"]
    assert paths["/api/v1/lists/{name}/recipients/{email}/unsubscribe"]["post"]["tags"] == [
        "recipients"
    ]
    assert paths["/api/v1/webhooks"]["post"]["tags"] == ["webhooks"]


def test_times_are_date_time_and_addresses_email(app: Flask) -> None:
    schemas = _document(app)["components"]["schemas"]

    def formats(model: str, field: str) -> set[str]:
        prop = schemas[model]["properties"][field]
        return {o["format"] for o in [prop, *prop.get("anyOf", [])] if "format" in o}

    for model, field in [
        ("DeliveryIn", "sent_at"),
        ("SuppressionChange", "changed_at"),
        ("StatusOut", "paused_until"),
        ("WebhookOut", "failing_since"),
        ("WebhookOut", "disabled_at"),
        ("RecipientExportOut", "exported_at"),
        ("HeldEvent", "occurred_at"),
        ("WebhookEvent", "occurred_at"),
    ]:
        assert formats(model, field) == {"date-time"}, (model, field)
    for model, field in [
        ("RecipientIn", "email"),
        ("BounceIn", "email"),
        ("StatusOut", "email"),
        ("SuppressionChange", "email"),
        ("WebhookEvent", "email"),
    ]:
        # idn-email (RFC 6531): unsubsvc takes internationalised addresses, JSON Schema's
        # plain "email" (ASCII only) would call a stored address invalid.
        assert formats(model, field) == {"idn-email"}, (model, field)
    assert schemas["EligibilityIn"]["properties"]["emails"]["items"]["format"] == "idn-email"


def test_path_parameters_are_plain_strings_a_client_encodes(app: Flask) -> None:
    """Routed with Werkzeug's path converter, documented as ordinary path parameters."""
    paths = _document(app)["paths"]
    operation = paths["/api/v1/lists/{name}/recipients/{email}/unsubscribe"]["post"]
    [email] = [p for p in operation["parameters"] if p["name"] == "email"]
    assert email["in"] == "path" and email["required"] is True
    assert email["schema"]["type"] == "string" and email["schema"]["format"] == "idn-email"
    assert "%2F" in email["description"]
    assert "style" not in email and "allowReserved" not in email
    deliveries = paths["/api/v1/lists/{name}/campaigns/{campaign}/deliveries"]["post"]
    [campaign] = [p for p in deliveries["parameters"] if p["name"] == "campaign"]
    assert campaign["schema"]["type"] == "string" and "%2F" in campaign["description"]


def test_webhooks_section_describes_payloads_and_standard_headers(app: Flask) -> None:
    from unsubsvc.core.events import EventKind

    document = _document(app)
    webhooks = document["webhooks"]
    assert set(webhooks) == {kind.value for kind in EventKind}
    schemas = document["components"]["schemas"]
    event = schemas["WebhookEvent"]
    assert {"id", "type", "occurred_at", "list", "email", "topic", "campaign", "channel"} <= set(
        event["properties"]
    )
    for kind, item in webhooks.items():
        post = item["post"]
        assert post["tags"] == ["webhooks"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/WebhookEvent"}
        headers = {p["name"]: p for p in post["parameters"]}
        assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert all(p["in"] == "header" and p["required"] for p in headers.values())
        signature = headers["webhook-signature"]["description"]
        assert "v1,<base64>" in signature and "whsec_" in signature
        assert "HMAC-SHA256" in signature
        assert kind in post["description"]
    assert set(schemas["EventKind"]["enum"]) == set(webhooks)


def test_document_validates_as_openapi_3_1(app: Flask) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(_document(app))


#: Examples per operation and database: enough to find drift, small enough for CI.
# Not checked: that every schema-valid request succeeds. Rules that depend on stored
# data (a topic the list does not have, a cadence it does not offer) answer 400 by design.
EXAMPLES = 40


def test_api_conforms_to_its_document(app: Flask, api: ApiClient) -> None:
    """Schemathesis over every operation: no 5xx, and every answer (errors included)
    matches the documented status codes, content type and schema."""
    # Schemathesis sends a wrong key with every case: the failed-key limit is not under test.
    app.config["RATELIMIT_ENABLED"] = False
    make_list(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis cannot read fails the test
        operations.append(result.ok())
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=api.headers, excluded_checks=[positive_data_acceptance])

        check()
