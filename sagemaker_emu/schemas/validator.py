"""Validate an operation's input and report failures as SageMaker does.

SageMaker's front end (AWS "Coral") first deserialises the JSON into the operation's
types; a wrong type is a `SerializationException`. It then checks every constraint and
reports all failures at once:

    2 validation errors detected: Value 'x!' at 'endpointName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: ...; Value null at ...

Member paths are lowerCamelCase and list elements are written `<n>.member` (1-based).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Iterator

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError as SchemaError

from sagemaker_emu.errors import InvalidInput, Malformed
from sagemaker_emu.schemas.build import input_schema
from sagemaker_emu.schemas.java_regex import compile_java, java_matches
from sagemaker_emu.service_model import CONTROL_SERVICE

_FLOAT_MAX = 3.4028234663852886e38
_JAVA_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
                "float": (-_FLOAT_MAX, _FLOAT_MAX), "double": (-sys.float_info.max, sys.float_info.max)}
_JAVA_NAMES = {"int32": "int", "int64": "long", "float": "float", "double": "double"}
MAX_DEPTH = 64  # SageMaker's deepest input shape nests about ten levels
MAX_VALUE_CHARS = 1024  # longer values are cut in messages, so hostile input is not echoed whole


def _java_pattern(validator, pattern, instance, schema) -> Iterator[SchemaError]:
    if isinstance(instance, str) and not java_matches(pattern, instance):
        yield SchemaError(f"{instance!r} does not match {pattern!r}")


def _java_type(validator, kind, instance, schema) -> Iterator[SchemaError]:
    lo, hi = _JAVA_RANGES[kind]
    if isinstance(instance, (int, float)) and not isinstance(instance, bool) and not lo <= instance <= hi:
        shown = instance if isinstance(instance, int) or abs(instance) != float("inf") else "Infinity"
        yield SchemaError(f"Numeric value ({shown}) out of range of {_JAVA_NAMES[kind]}")


def _is_int(checker, instance) -> bool:
    # JSON 1.1 integers are whole numbers on the wire; 1.0 is not an Integer for Coral.
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator,
    validators={"pattern": _java_pattern, "javaType": _java_type},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int),
)


@functools.lru_cache(maxsize=None)
def _validator(operation: str, service: str = CONTROL_SERVICE):
    return _Validator(input_schema(operation, service))


def warm(operations, service: str = CONTROL_SERVICE) -> None:
    """Build every operation's validator and compile its Java patterns (fails loudly if one
    does not translate)."""
    for name in operations:
        for shape_schema in input_schema(name, service)["$defs"].values():
            if "pattern" in shape_schema:
                compile_java(shape_schema["pattern"])
        _validator(name, service)


def strip_nulls(value: Any, depth: int = 0) -> Any:
    """Coral treats a JSON null member as absent. Nesting deeper than any input shape is
    refused here, before anything else recurses into it."""
    if depth > MAX_DEPTH and isinstance(value, (dict, list)):
        raise Malformed(f"The request body is nested more than {MAX_DEPTH} levels deep.")
    if isinstance(value, dict):
        return {k: strip_nulls(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v, depth + 1) for v in value]
    return value


def validate_input(operation: str, params: dict[str, Any], service: str = CONTROL_SERVICE) -> None:
    """Raise `Malformed` or `InvalidInput` when `params` is not a valid `operation` input."""
    errors = list(_validator(operation, service).iter_errors(params))
    if not errors:
        return
    for err in errors:
        if err.validator in ("type", "javaType") and err.instance is not None:
            raise Malformed(_type_message(err))
    clauses: list[str] = []
    rules: list[str] = []
    seen: set[str] = set()
    for err in errors:
        if err.validator == "required":
            where, _ = _walk(err, params)
            for name in err.validator_value:
                path = f"{where}.{_camel(name)}" if where else _camel(name)
                if name not in err.instance and path not in seen:
                    seen.add(path)
                    clauses.append(f"Value null at '{path}' failed to satisfy constraint: Member must not be null")
        elif err.validator == "type":  # a null list element: Coral keeps it, and refuses it
            where, _ = _walk(err, params)
            clauses.append(f"Value null at '{where}' failed to satisfy constraint: Member must not be null")
        elif err.validator in _PHRASES:
            clauses.append(_clause(err, params))
        else:
            rules.append(_rule_message(err))
    if clauses:
        n = len(clauses)
        raise InvalidInput(f"{n} validation error{'' if n == 1 else 's'} detected: " + "; ".join(clauses))
    raise InvalidInput(rules[0])


_PHRASES = {
    "minLength": "Member must have length greater than or equal to {}",
    "maxLength": "Member must have length less than or equal to {}",
    "minItems": "Member must have length greater than or equal to {}",
    "maxItems": "Member must have length less than or equal to {}",
    "minProperties": "Member must have length greater than or equal to {}",
    "maxProperties": "Member must have length less than or equal to {}",
    "minimum": "Member must have value greater than or equal to {}",
    "maximum": "Member must have value less than or equal to {}",
    "pattern": "Member must satisfy regular expression pattern: {}",
    "enum": "Member must satisfy enum value set: [{}]",
}


def _phrase(err: SchemaError) -> str:
    value = err.validator_value
    if err.validator == "enum":
        value = ", ".join(value)
    return _PHRASES[err.validator].format(value)


def _clause(err: SchemaError, document: Any) -> str:
    where, map_entry = _walk(err, document)
    if map_entry is None:
        return f"Value {_render(err.instance)} at '{where}' failed to satisfy constraint: {_phrase(err)}"
    # Coral reports a failing map key or value against the whole map.
    side, the_map = map_entry
    return (
        f"Value {_render(the_map)} at '{where}' failed to satisfy constraint: "
        f"Map {side} must satisfy constraint: [{_phrase(err)}]"
    )


def _walk(err: SchemaError, document: Any) -> tuple[str, tuple[str, Any] | None]:
    """Coral's member path for `err`; plus ("keys"|"value", the map) inside a map entry.

    The schema path says which instance steps are structure members (`properties`), list
    elements (`items`) or map entries (`additionalProperties` / `propertyNames`).
    """
    schema_path = list(err.absolute_schema_path)
    instance_path = list(err.absolute_path)
    parts: list[str] = []
    node = document
    i = j = 0
    while i < len(schema_path):
        tok = schema_path[i]
        if tok == "properties" and i + 1 < len(schema_path):
            parts.append(_camel(schema_path[i + 1]))
            node = node[instance_path[j]]
            i, j = i + 2, j + 1
            continue
        if tok == "items":
            parts.append(f"{instance_path[j] + 1}.member")
            node = node[instance_path[j]]
            j += 1
        elif tok == "additionalProperties":
            return ".".join(parts), ("value", node)
        elif tok == "propertyNames":
            return ".".join(parts), ("keys", node)
        i += 1
    return ".".join(parts), None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _render(value: Any) -> str:
    """A value as Coral prints it: Java toString in single quotes."""
    text = _java_str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    return f"'{text}'"


def _java_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_str(v)}" for k, v in value.items()) + "}"
    return str(value)


_FOUND = {str: "STRING_VALUE", int: "NUMBER_VALUE", float: "NUMBER_VALUE"}
_EXPECTED = {
    "string": "a String",
    "integer": "an Integer",
    "number": "a Number",
    "boolean": "a Boolean",
}


def _type_message(err: SchemaError) -> str:
    if err.validator == "javaType":
        return err.message
    found = err.instance
    if isinstance(found, dict):
        return "Start of structure or map found where not expected."
    if isinstance(found, list):
        return "Start of list found where not expected."
    token = {True: "TRUE_VALUE", False: "FALSE_VALUE"}[found] if isinstance(found, bool) else _FOUND[type(found)]
    expected = err.validator_value
    if expected in ("object", "array"):
        start = "structure or map" if expected == "object" else "list"
        return f"Expected start of {start} but found {token}."
    return f"{token} can not be converted to {_EXPECTED[expected]}"


def _rule_message(err: SchemaError) -> str:
    # Rules from overlays.json carry their own text next to the keyword that failed.
    message = err.schema.get("x-message") if isinstance(err.schema, dict) else None
    return message or f"Invalid request: {err.message}"
