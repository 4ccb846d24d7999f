"""Shape an operation's result as its botocore output shape says.

Members not in the shape are dropped, floats are sent as floats (`1.0`, never `1`) and
timestamps as epoch seconds with millisecond precision, as SageMaker sends them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.model import Shape


def to_wire(shape: Shape | None, value: Any) -> Any:
    if shape is None:
        return {}
    t = shape.type_name
    if t == "structure":
        return {
            name: to_wire(member, value[name])
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if t == "list":
        return [to_wire(shape.member, v) for v in value]
    if t == "map":
        return {k: to_wire(shape.value, v) for k, v in value.items()}
    if t in ("float", "double"):
        return float(value)
    if t == "timestamp":
        if isinstance(value, dt.datetime):
            value = value.timestamp()
        return round(float(value), 3)
    return value
