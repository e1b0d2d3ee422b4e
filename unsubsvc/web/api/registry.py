"""Declare API operations once: the route, its validation, and its OpenAPI entry.

Each operation names its body/query/response models; the same declaration
registers the Flask view, validates input with pydantic, and produces the
OpenAPI document, so the document cannot drift from the routes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from unsubsvc.core.errors import UnsubsvcError
from unsubsvc.web.api.schemas import EMAIL_PATTERN, ISO_TIME_ERROR, ISO_TIME_MESSAGE, ErrorOut
from unsubsvc.web.api.webhook_doc import webhooks_section
from unsubsvc.web.hygiene import MESSAGE, json_body_has_nul

#: Statuses every authenticated operation may answer besides its own.
COMMON_ERRORS = {
    400: "Malformed request (not JSON, or a bad value)",
    401: "Missing or wrong API key",
    404: "Unknown list, address or resource",
    413: "Body too large",
    415: "Body is not application/json",
    422: "A field failed validation; `fields` names it",
}

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
_REF = "#/components/schemas/{model}"

#: The document's tags, in order, with what each groups.
TAGS: list[tuple[str, str]] = [
    ("lists", "Mailing lists: their topics and frequencies"),
    ("sending", "Before a send: List-Unsubscribe headers and who may be mailed"),
    ("recipients", "One address on one list: its state, unsubscribe and resubscribe"),
    ("deliveries", "After a send: delivered counts, bounces and complaints"),
    ("suppressions", "The feed of unsubscribes and resubscribes, paged by cursor"),
    ("webhooks", "Endpoints told of every change, and the payloads they receive"),
    ("data rights", "One address's export and erasure (GDPR access and erasure)"),
    ("meta", "This document"),
]
#: Each operation's tag, by operationId; a new operation without one fails the tests.
OPERATION_TAGS: dict[str, str] = {
    "openapi_document": "meta",
    "get_lists": "lists",
    "create_list": "lists",
    "get_list": "lists",
    "headers": "sending",
    "eligibility": "sending",
    "recipient": "recipients",
    "unsubscribe": "recipients",
    "resubscribe": "recipients",
    "deliveries": "deliveries",
    "bounce": "deliveries",
    "complaint": "deliveries",
    "suppressions": "suppressions",
    "get_webhooks": "webhooks",
    "add_webhook": "webhooks",
    "disable_webhook": "webhooks",
    "rotate_webhook": "webhooks",
    "erase_recipient": "data rights",
    "recipient_export": "data rights",
}

#: Addresses may be internationalised (RFC 6531: UTF-8 in the local part), which JSON
#: Schema's ``email`` (RFC 5321, ASCII) refuses and ``idn-email`` (RFC 6531) allows.
ADDRESS_FORMAT = "idn-email"

#: Path parameters by name: what a client must know beyond "a string".
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "email": {
        "description": "The address, percent-encoded as one path segment (`/` as `%2F`, "
        "`@` as `%40`): any character valid in an address is accepted",
        "schema": {"type": "string", "format": ADDRESS_FORMAT, "minLength": 3, "maxLength": 254},
    },
    "campaign": {
        "description": "The campaign's key, percent-encoded as one path segment (`/` as `%2F`)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "name": {
        "description": "The list's name",
        "schema": {"type": "string", "minLength": 1},
    },
}

#: Pydantic error types in words; ``{...}`` is filled from the error's context.
_MESSAGES: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request (check the spelling)",
    "string_type": "must be a string",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "datetime_type": ISO_TIME_MESSAGE,
    "datetime_parsing": ISO_TIME_MESSAGE,
    "datetime_from_date_parsing": ISO_TIME_MESSAGE,
    "datetime_object_invalid": ISO_TIME_MESSAGE,
    "timezone_aware": ISO_TIME_MESSAGE,
    ISO_TIME_ERROR: ISO_TIME_MESSAGE,
    "string_unicode": "must be valid text",
}
#: Patterns in words, by the pattern itself.
_PATTERNS: dict[str, str] = {
    EMAIL_PATTERN: "must be an e-mail address",
    r"^[a-z0-9][a-z0-9_-]{0,63}$": (
        "must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"
    ),
}


class ApiError(UnsubsvcError):
    """An API-level refusal with its own status and optional per-field detail."""

    def __init__(self, status: int, message: str, fields: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.fields = fields


@dataclass
class Operation:
    rule: str
    method: str
    endpoint: str
    summary: str
    status: int
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    public: bool = False
    extra_errors: dict[int, str] = field(default_factory=dict)


def plain_message(error: Any) -> str:
    """Return a pydantic error in words a sender understands: never a regex or a type name."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(context.get("pattern")), "is not in the expected form")
    if kind == "value_error":
        return str(context.get("error") or "is not a valid value")
    template = _MESSAGES.get(kind)
    if template is None:
        return str(error["msg"])
    try:
        return template.format(**context)
    except (KeyError, IndexError):  # pragma: no cover - a context pydantic did not give
        return template.split(" {")[0]


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": plain_message(err)}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _is_time_name(name: str) -> bool:
    return name.endswith(("_at", "_until", "_since")) or name == "since"


def _add_formats(schema: Any) -> None:
    """Mark timestamp text (``*_at``, ``*_until``, ``since``) date-time and addresses email.

    The services' own types (data rights) carry times as ISO 8601 strings; this names
    them so in the document without a second copy of each type.
    """
    if isinstance(schema, list):
        for item in schema:
            _add_formats(item)
        return
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, prop in properties.items():
            wanted = (
                "date-time" if _is_time_name(name) else ADDRESS_FORMAT if name == "email" else None
            )
            if wanted is not None and isinstance(prop, dict):
                for option in [prop, *prop.get("anyOf", [])]:
                    if option.get("type") == "string" and "format" not in option:
                        option["format"] = wanted
    for value in schema.values():
        if isinstance(value, dict | list):
            _add_formats(value)


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = _field_errors(exc)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        raise ApiError(422, f"invalid {where}: {summary}", fields) from exc


def parse_body(model: type[BaseModel]) -> BaseModel:
    """Return the request's JSON body validated as ``model`` (415/400/422 otherwise)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "send the body as application/json")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # json.loads past its nesting limit raises this, not ValueError
        data = None
    if data is None:
        raise ApiError(400, "the body is not valid JSON")
    if json_body_has_nul():
        raise ApiError(400, MESSAGE)
    return _validate(model, data, "body")


def parse_query(model: type[BaseModel]) -> BaseModel:
    """Return the query string validated as ``model``."""
    args = {key: values[-1] for key, values in request.args.lists()}
    return _validate(model, args, "query")


def _path_parameter(converter: str | None, name: str) -> dict[str, Any]:
    """Describe a path parameter: a plain string the client percent-encodes, or an id.

    ``email`` (``blueprint.AddressConverter``) and ``campaign`` (Werkzeug's ``path``)
    take ``/``, so they work whether a server decodes ``%2F`` before routing or not;
    the document still calls them plain path parameters.
    """
    entry: dict[str, Any] = {"name": name, "in": "path", "required": True}
    if converter == "int":
        entry["schema"] = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
        return entry
    known = PATH_PARAMETERS.get(name, {"schema": {"type": "string", "minLength": 1}})
    entry.update(known)
    return entry


class Api:
    """A registry of operations on one blueprint."""

    def __init__(self, blueprint: Blueprint, *, title: str, version: str) -> None:
        self.blueprint = blueprint
        self.title = title
        self.version = version
        self.operations: list[Operation] = []

    def route(
        self,
        rule: str,
        method: str,
        *,
        summary: str,
        status: int = 200,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        public: bool = False,
        errors: dict[int, str] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``func`` as the handler of ``method rule``."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(func)
            def view(**path: Any) -> Response:
                kwargs = dict(path)
                if body is not None:
                    kwargs["body"] = parse_body(body)
                if query is not None:
                    kwargs["query"] = parse_query(query)
                result = func(**kwargs)
                if isinstance(result, Response):
                    return result
                out = jsonify(result.model_dump(mode="json") if result is not None else {})
                out.status_code = status
                if status == 204:
                    out = Response(status=204)
                return out

            self.blueprint.add_url_rule(
                rule, endpoint=func.__name__, view_func=view, methods=[method]
            )
            self.operations.append(
                Operation(
                    rule, method, func.__name__, summary, status, body, query, response, public,
                    errors or {},
                )
            )  # fmt: skip
            return func

        return decorate

    def openapi(self, prefix: str) -> dict[str, Any]:
        """Return the OpenAPI 3.1 document of every registered operation."""
        models: list[tuple[type[BaseModel], Any]] = [(ErrorOut, "serialization")]
        for op in self.operations:
            if op.body is not None:
                models.append((op.body, "validation"))
            if op.response is not None:
                models.append((op.response, "serialization"))
        keyed, top = models_json_schema(models, ref_template=_REF)
        schemas = top.get("$defs", {})
        webhooks, webhook_schemas = webhooks_section(_REF)
        for schema_name, schema in webhook_schemas.items():
            if schemas.setdefault(schema_name, schema) != schema:  # pragma: no cover
                raise RuntimeError(f"two different schemas are named {schema_name}")
        _add_formats(schemas)
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            path = prefix + _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", op.rule)
            entry: dict[str, Any] = {
                "operationId": op.endpoint,
                "summary": op.summary,
                "tags": [OPERATION_TAGS.get(op.endpoint, op.rule.strip("/").split("/")[0])],
                "responses": self._responses(op, keyed),
            }
            parameters = [_path_parameter(conv, name) for conv, name in _CONVERTER.findall(op.rule)]
            if op.query is not None:
                props = op.query.model_json_schema()
                _add_formats(props)
                required = set(props.get("required", []))
                for name, schema in props.get("properties", {}).items():
                    parameters.append(
                        {
                            "name": name,
                            "in": "query",
                            "required": name in required,
                            "schema": schema,
                        }
                    )
            if parameters:
                entry["parameters"] = parameters
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": keyed[(op.body, "validation")]}},
                }
            if op.public:
                entry["security"] = []
            paths.setdefault(path, {})[op.method.lower()] = entry
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "tags": [{"name": name, "description": text} for name, text in TAGS],
            "paths": paths,
            "webhooks": webhooks,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "description": "unsubsvc apikey"}
                },
            },
            "security": [{"bearer": []}],
        }

    @staticmethod
    def _responses(op: Operation, keyed: dict[Any, Any]) -> dict[str, Any]:
        error = {"application/json": {"schema": keyed[(ErrorOut, "serialization")]}}
        responses: dict[str, Any] = {}
        if op.status == 204:
            responses["204"] = {"description": "Done"}
        else:
            content = (
                {"application/json": {"schema": keyed[(op.response, "serialization")]}}
                if op.response is not None
                else {"application/json": {"schema": {"type": "object"}}}
            )
            responses[str(op.status)] = {"description": "Success", "content": content}
        errors = {} if op.public else dict(COMMON_ERRORS)
        errors.update(op.extra_errors)
        for code, text in sorted(errors.items()):
            responses[str(code)] = {"description": text, "content": error}
        return responses
