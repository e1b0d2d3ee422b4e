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
from unsubsvc.web.api.schemas import ErrorOut
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


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


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
        keyed, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
        schemas = top.get("$defs", {})
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            path = prefix + _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", op.rule)
            entry: dict[str, Any] = {
                "operationId": op.endpoint,
                "summary": op.summary,
                "responses": self._responses(op, keyed),
            }
            parameters = [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
                    if conv == "int"
                    else {"type": "string", "minLength": 1},
                }
                for conv, name in _CONVERTER.findall(op.rule)
            ]
            if op.query is not None:
                props = op.query.model_json_schema()
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
            "paths": paths,
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
