"""Checks HTTP requests and responses against Immich's own OpenAPI document. Reads the spec file.

The document (tests/data/immich-openapi-3.0.3.json) is OpenAPI 3.0: `nullable` and `$ref` are
turned into JSON Schema (draft 2020-12) and checked with jsonschema. Two views exist: lenient
(unknown object keys allowed, as Immich drops them from bodies) and strict (a key the spec does
not list is an error; used for the project's own request bodies and for the fake's responses).
Problems come back as `Issue`s worded like Immich's validation errors, so the fake Immich can
answer 400 with them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError, best_match  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.kit import DATA

SPEC_PATH = DATA / "immich-openapi-3.0.3.json"
BASE_PATH = "/api"
_LENIENT = "urn:immich-openapi:lenient"
_STRICT = "urn:immich-openapi:strict"
# Keys whose values are maps of names, not schemas with keywords.
_NAME_MAPS = ("properties", "patternProperties", "$defs", "definitions")
# Immich's error body; the spec declares no error responses at all.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "error": {"type": "string"},
        "statusCode": {"type": "integer"},
        "correlationId": {"type": "string"},
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Issue:
    """One validation problem, shaped like a zod issue (Immich 3 validates with zod)."""

    where: str  # "body", "query", "path", "response"
    path: tuple[str | int, ...]
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def zod(self) -> dict[str, Any]:
        return {**self.extra, "code": self.code, "path": list(self.path), "message": self.message}

    def __str__(self) -> str:
        where = "/".join(str(p) for p in self.path) or "(root)"
        return f"{self.where} {where}: {self.message}"


def convert(node: Any, base: str, strict: bool) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: refs point into `base`, `nullable` allows null."""
    if isinstance(node, list):
        return [convert(x, base, strict) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("nullable", "example"):
            continue
        if key == "$ref":
            out[key] = base + value
        elif key in _NAME_MAPS:
            out[key] = {name: convert(sub, base, strict) for name, sub in value.items()}
        else:
            out[key] = convert(value, base, strict)
    if strict and out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # as in the spec, without /api
    raw: dict[str, Any]

    @property
    def permission(self) -> str | bool | None:
        """The scope an API key needs; False = any valid key; None = no authentication."""
        if "security" not in self.raw:
            return None
        permission: str | bool = self.raw.get("x-immich-permission", False)
        return permission

    def params(self, where: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.raw.get("parameters", []) if p["in"] == where}


_JSON_TYPES = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _issue(err: ValidationError, where: str, prefix: tuple[str | int, ...] = ()) -> Issue:
    """A jsonschema error as Immich (zod) words the same problem."""
    if err.context:
        err = best_match(err.context)
    path = prefix + tuple(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    kind, got = err.validator, err.instance
    if kind == "maximum":
        extra = {"origin": "number", "maximum": err.validator_value, "inclusive": True}
        msg = f"Too big: expected number to be <={err.validator_value}"
        return Issue(where, path, "too_big", msg, extra)
    if kind == "minimum":
        extra = {"origin": "number", "minimum": err.validator_value, "inclusive": True}
        msg = f"Too small: expected number to be >={err.validator_value}"
        return Issue(where, path, "too_small", msg, extra)
    if kind == "type":
        received = _JSON_TYPES.get(type(got), "unknown")
        msg = f"Invalid input: expected {err.validator_value}, received {received}"
        return Issue(where, path, "invalid_type", msg, {"expected": err.validator_value})
    if kind == "enum":
        options = "|".join(json.dumps(v) for v in err.validator_value)
        return Issue(where, path, "invalid_value", f"Invalid option: expected one of {options}")
    if kind in ("pattern", "format"):
        fmt = schema.get("format", "string")
        names = {"uuid": "UUID", "date-time": "ISO datetime", "date": "ISO date"}
        return Issue(where, path, "invalid_format", f"Invalid {names.get(fmt, fmt)}")
    if kind == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        name = missing[0] if missing else "?"
        msg = "Invalid input: expected value, received undefined"
        return Issue(where, (*path, name), "invalid_type", msg)
    if kind == "additionalProperties":
        keys = [k for k in got if k not in schema.get("properties", {})]
        msg = "Unrecognized key" + ("s" if len(keys) > 1 else "") + ": " + ", ".join(keys)
        return Issue(where, path, "unrecognized_keys", msg, {"keys": keys})
    return Issue(where, path, "custom", err.message)


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A query string value as the type its schema declares (Immich coerces the same way)."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


class Spec:
    """Immich's operations and schemas, with validators built on first use."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.schemas: dict[str, Any] = doc["components"]["schemas"]
        registry: Registry[Any] = Registry()
        for uri, strict in ((_LENIENT, False), (_STRICT, True)):
            converted = {"components": {"schemas": convert(self.schemas, uri, strict)}}
            registry = registry.with_resource(uri, DRAFT202012.create_resource(converted))
        self._registry = registry
        self._validators: dict[tuple[str, bool], Draft202012Validator] = {}
        self.operations = [
            Operation(method.upper(), template, op)
            for template, ops in doc["paths"].items()
            for method, op in ops.items()
        ]
        self._matchers = sorted(
            ((self._regex(op.template), op) for op in self.operations),
            key=lambda pair: pair[1].template.count("{"),
        )

    @staticmethod
    def _regex(template: str) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", template)
        body = "".join(
            f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
        )
        return re.compile(body + "$")

    def validator(self, schema: dict[str, Any], strict: bool) -> Draft202012Validator:
        key = (json.dumps(schema, sort_keys=True), strict)
        if key not in self._validators:
            base = _STRICT if strict else _LENIENT
            self._validators[key] = Draft202012Validator(
                convert(schema, base, strict),
                registry=self._registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
        return self._validators[key]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation serving `method path` (path with or without /api) and its path values."""
        if path.startswith(BASE_PATH + "/"):
            path = path[len(BASE_PATH) :]
        for regex, op in self._matchers:
            if op.method != method.upper():
                continue
            match = regex.match(path)
            if match:
                return op, match.groupdict()
        return None

    def check(
        self, schema: dict[str, Any], value: Any, where: str, strict: bool, prefix: tuple[Any, ...]
    ) -> list[Issue]:
        errors = self.validator(schema, strict).iter_errors(value)
        issues = [_issue(e, where, prefix) for e in sorted(errors, key=lambda e: str(e.path))]
        # A uuid or date fails both its pattern and its format: report it once.
        return list(dict.fromkeys(issues))

    def request_issues(
        self,
        op: Operation,
        path_values: dict[str, str],
        query: dict[str, str],
        body: Any,
        *,
        strict: bool,
    ) -> list[Issue]:
        """Problems with one request to `op`; strict also flags undeclared query and body keys."""
        issues: list[Issue] = []
        for name, value in path_values.items():
            param = op.params("path").get(name)
            if param is not None:
                issues += self.check(param["schema"], value, "path", False, (name,))
        declared = op.params("query")
        for name, param in declared.items():
            if name in query:
                value = _coerce(query[name], self.resolve(param["schema"]))
                issues += self.check(param["schema"], value, "query", False, (name,))
            elif param.get("required"):
                msg = "Invalid input: expected string, received undefined"
                issues.append(Issue("query", (name,), "invalid_type", msg))
        if strict:
            for name in query.keys() - declared.keys():
                issues.append(Issue("query", (name,), "unrecognized_keys", f"undeclared {name}"))
        issues += self._body_issues(op, body, strict)
        return issues

    def _body_issues(self, op: Operation, body: Any, strict: bool) -> list[Issue]:
        spec_body = op.raw.get("requestBody")
        if spec_body is None:
            if body is not None and strict:
                return [Issue("body", (), "custom", "this operation takes no body")]
            return []
        schema = spec_body["content"].get("application/json", {}).get("schema")
        if body is None:
            if spec_body.get("required"):
                msg = "Invalid input: expected object, received undefined"
                return [Issue("body", (), "invalid_type", msg)]
            return []
        return self.check(schema, body, "body", strict, ()) if schema else []

    def response_issues(
        self, op: Operation, status: int, content_type: str, body: bytes
    ) -> list[Issue]:
        """Problems with one response of `op`; undeclared statuses must be Immich error bodies."""
        declared = op.raw.get("responses", {}).get(str(status))
        media = content_type.split(";", 1)[0].strip().lower()
        if declared is None:
            if status < 400:
                return [Issue("response", (), "custom", f"status {status} is not declared")]
            return self._json_issues(ERROR_SCHEMA, media, body)
        content = declared.get("content")
        if not content:
            return [] if not body else [Issue("response", (), "custom", "body on a bodyless reply")]
        if "application/json" in content:
            return self._json_issues(content["application/json"]["schema"], media, body)
        if not body:
            return [Issue("response", (), "custom", "empty binary body")]
        return []

    def _json_issues(self, schema: dict[str, Any], media: str, body: bytes) -> list[Issue]:
        if media != "application/json":
            return [Issue("response", (), "custom", f"content type {media!r}, not JSON")]
        try:
            value = json.loads(body)
        except ValueError:
            return [Issue("response", (), "custom", "body is not valid JSON")]
        return self.check(schema, value, "response", True, ())


@cache
def spec() -> Spec:
    """The vendored Immich 3.0.3 document, loaded once per process."""
    return Spec(json.loads(SPEC_PATH.read_text()))
