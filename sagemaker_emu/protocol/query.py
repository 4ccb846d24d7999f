"""The AWS query protocol (form-encoded `Action=...&Version=...` in, XML out), which botocore
used for CloudWatch before JSON and CBOR. Both directions are driven by the service's botocore
shapes: `Name.member.N` lists, `Name.entry.N.key`/`.value` maps, ISO 8601 timestamps."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from sagemaker_emu import errors


def parse(body: bytes) -> tuple[str, dict[str, str]]:
    """(Action, the flat parameters) of a form-encoded body."""
    try:
        pairs = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise errors.Malformed("The request body is not valid UTF-8.") from None
    return pairs.pop("Action", ""), {k: v for k, v in pairs.items() if k != "Version"}


LEAF = ""  # the key under which a tree node keeps the value of the name that ends there


def params_of(shape: Shape | None, flat: dict[str, str]) -> dict[str, Any]:
    """The input `shape` describes, read from the flat `A.member.1.B=...` parameters. The names
    are first arranged as a tree by their dotted parts, so that reading is linear in the size
    of the body (scanning every name for every list index was quadratic: 1,000 datums took 10 s)."""
    return _structure(shape, _tree(flat)) if shape is not None else {}


def _tree(flat: dict[str, str]) -> dict:
    root: dict = {}
    for key, value in flat.items():
        node = root
        for part in key.split("."):
            node = node.setdefault(part, {})
        node[LEAF] = value
    return root


def _name(member: Shape, default: str) -> str:
    return member.serialization.get("name", default)


def _structure(shape: Shape, node: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for name, member in shape.members.items():
        child = node.get(_name(member, name))
        value = _value(member, child, prefix + _name(member, name)) if child is not None else None
        if value is not None:
            out[name] = value
    return out


def _value(shape: Shape, node: dict, key: str) -> Any:
    """The value of the parameter named `key` (for messages), whose subtree is `node`."""
    t = shape.type_name
    if t == "structure":
        return _structure(shape, node, key + ".") if set(node) - {LEAF} else None
    if t == "list":
        flattened = shape.serialization.get("flattened")
        items = node if flattened else node.get("member", {})
        base = key if flattened else key + ".member"
        out, n = [], 1
        while str(n) in items:  # AWS numbers members from 1 without gaps; the first gap ends the list
            out.append(_value(shape.member, items[str(n)], f"{base}.{n}"))
            n += 1
        if out:
            return out
        return [] if LEAF in node else None  # an empty list travels as `Name=`
    if t == "map":
        flattened = shape.serialization.get("flattened")
        entries = node if flattened else node.get("entry", {})
        base = key if flattened else key + ".entry"
        mapping, n = {}, 1
        while LEAF in entries.get(str(n), {}).get("key", {}):
            entry = entries[str(n)]
            value = entry.get("value")
            mapping[entry["key"][LEAF]] = _value(shape.value, value, f"{base}.{n}.value") if value else None
            n += 1
        return mapping or None
    raw = node.get(LEAF)
    if raw is None:
        return None
    try:
        if t in ("integer", "long"):
            return int(raw)
        if t in ("float", "double"):
            return float(raw)
        if t == "boolean":
            return raw.lower() == "true"
        if t == "timestamp":
            try:
                return float(raw)
            except ValueError:
                return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.Malformed(f"Value '{raw[:64]}' for parameter {key[:256]} is not a valid {t}.") from None
    return raw


def response(operation: OperationModel, result: dict[str, Any], rid: str, namespace: str) -> bytes:
    shape = operation.output_shape
    inner = ""
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
        inner = f"<{wrapper}>{_members(shape, result)}</{wrapper}>"
    return (f'<{operation.name}Response xmlns="{namespace}">{inner}'
            f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{operation.name}Response>").encode()


def error(code: str, message: str, sender: bool, rid: str, namespace: str) -> bytes:
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{"Sender" if sender else "Receiver"}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>").encode()


def _members(shape: Shape, value: dict[str, Any]) -> str:
    return "".join(_element(m, value[n], _name(m, n)) for n, m in shape.members.items() if value.get(n) is not None)


def _element(shape: Shape, value: Any, name: str) -> str:
    t = shape.type_name
    if t == "structure":
        body = _members(shape, value)
    elif t == "list":
        item = _name(shape.member, "member")
        body = "".join(_element(shape.member, v, item) for v in value)
        if shape.serialization.get("flattened"):
            return body
    elif t == "map":
        body = "".join(f"<entry>{_element(shape.key, k, 'key')}{_element(shape.value, v, 'value')}</entry>"
                       for k, v in value.items())
    elif t == "timestamp":
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        body = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    elif t == "boolean":
        body = "true" if value else "false"
    elif t in ("float", "double"):
        body = repr(float(value))
    else:
        body = escape(str(value))
    return f"<{name}>{body}</{name}>"
