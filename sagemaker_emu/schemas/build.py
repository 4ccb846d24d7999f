"""Build one JSON Schema per operation input from botocore's service model.

Every shape becomes a `$defs` entry (so recursive shapes stay finite), carrying the model's
constraints as JSON Schema keywords. Constraints the model cannot express live as data in
`overlays.json`, keyed by shape name, and are merged in here.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from botocore.model import Shape

from sagemaker_emu.service_model import CONTROL_SERVICE, service_model

_INT_RANGE = {"integer": "int32", "long": "int64"}


def _shape_schema(shape: Shape) -> dict[str, Any]:
    meta = shape.metadata
    t = shape.type_name
    s: dict[str, Any] = {}
    if t == "structure":
        s["type"] = "object"
        if shape.required_members:
            s["required"] = list(shape.required_members)
        s["properties"] = {name: _ref(m) for name, m in shape.members.items()}
    elif t == "list":
        s["type"] = "array"
        s["items"] = _ref(shape.member)
        if "min" in meta:
            s["minItems"] = meta["min"]
        if "max" in meta:
            s["maxItems"] = meta["max"]
    elif t == "map":
        s["type"] = "object"
        s["propertyNames"] = _ref(shape.key)
        s["additionalProperties"] = _ref(shape.value)
        if "min" in meta:
            s["minProperties"] = meta["min"]
        if "max" in meta:
            s["maxProperties"] = meta["max"]
    elif t == "string":
        s["type"] = "string"
        if "enum" in meta:
            s["enum"] = list(meta["enum"])
        if "min" in meta:
            s["minLength"] = meta["min"]
        if "max" in meta:
            s["maxLength"] = meta["max"]
        if "pattern" in meta:
            s["pattern"] = meta["pattern"]
    elif t in _INT_RANGE:
        s["type"] = "integer"
        s["javaType"] = _INT_RANGE[t]
        if "min" in meta:
            s["minimum"] = meta["min"]
        if "max" in meta:
            s["maximum"] = meta["max"]
    elif t in ("float", "double"):
        s["type"] = "number"
        s["javaType"] = t  # Java's range: a Float beyond 3.4e38 is refused (docs/decisions.md)
        if "min" in meta:
            s["minimum"] = meta["min"]
        if "max" in meta:
            s["maximum"] = meta["max"]
    elif t == "boolean":
        s["type"] = "boolean"
    elif t == "timestamp":
        # JSON 1.1 sends epoch seconds; botocore converts user strings before sending.
        s["type"] = "number"
    elif t == "blob":
        s["type"] = "string"
    return s


def _ref(shape: Shape) -> dict[str, str]:
    return {"$ref": f"#/$defs/{shape.name}"}


@functools.lru_cache(maxsize=1)
def _overlays() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("overlays.json").read_text()
    data = json.loads(text)
    data.pop("_about", None)
    return data


def _collect(shape: Shape, defs: dict[str, Any]) -> None:
    if shape.name in defs:
        return
    defs[shape.name] = {}  # placeholder first: shapes may refer to themselves
    schema = _shape_schema(shape)
    overlay = dict(_overlays().get(shape.name, {}))
    overlay.pop("x-why", None)  # a note for readers of overlays.json
    schema.update(overlay.pop("x-replace", {}))
    if overlay:
        schema["allOf"] = [overlay]
    defs[shape.name] = schema
    if shape.type_name == "structure":
        for member in shape.members.values():
            _collect(member, defs)
    elif shape.type_name == "list":
        _collect(shape.member, defs)
    elif shape.type_name == "map":
        _collect(shape.key, defs)
        _collect(shape.value, defs)


def _inline(node: Any, defs: dict[str, Any], stack: tuple[str, ...]) -> Any:
    """Replace each `$ref` by the shape's schema, except where a shape contains itself.

    Same schema, but validating it needs no reference lookups: the hot path is faster.
    """
    if isinstance(node, list):
        return [_inline(v, defs, stack) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        name = ref[len("#/$defs/"):]
        if name in stack:
            return node  # recursive shape: keep the reference
        return _inline(defs[name], defs, stack + (name,))
    return {k: (v if k in ("enum", "required") else _inline(v, defs, stack)) for k, v in node.items()}


@functools.lru_cache(maxsize=None)
def input_schema(operation: str, service: str = CONTROL_SERVICE) -> dict[str, Any]:
    """The JSON Schema for `operation`'s input, e.g. `input_schema("CreateEndpoint")`."""
    shape = service_model(service).operation_model(operation).input_shape
    if shape is None:
        return {"type": "object"}
    defs: dict[str, Any] = {}
    _collect(shape, defs)
    schema = _inline(defs[shape.name], defs, (shape.name,))
    schema["$defs"] = defs  # still the target of any recursive reference
    return schema
