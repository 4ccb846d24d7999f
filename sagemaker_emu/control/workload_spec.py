"""An AI workload config's WorkloadSpec: inline YAML or JSON, read and checked as SageMaker does.

The spec has four top-level keys: `benchmark` (required; its `type` must be `aiperf`),
`parameters` (AIPerf's flags by name, schemas/workload_parameters.json; an unknown name is
refused, an alias becomes its flag's own name), `secrets` (Secrets Manager ARNs only: a plain
value would be stored in clear text), and `tooling` (`api_standard: openai`, a `version`).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from sagemaker_emu.errors import InvalidInput

MAX_INLINE_BYTES = 256 * 1024  # a spec is a page of settings; refuse what could only be abuse
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+")
_TOP = ("benchmark", "parameters", "secrets", "tooling")
_TYPES: dict[str, tuple[type, ...]] = {"integer": (int,), "number": (int, float), "boolean": (bool,),
                                       "string": (str,), "object": (dict,)}


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    return json.loads((Path(__file__).parents[1] / "schemas" / "workload_parameters.json").read_text())


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors' aliases: a few bytes of them can expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise InvalidInput("The WorkloadSpec uses a YAML alias; write the values out instead.")
        return super().compose_node(parent, index)


def parse(inline: str) -> dict[str, Any]:
    """The spec, checked, with aliases replaced by their parameters' names and defaults filled
    in; InvalidInput saying what is wrong."""
    if len(inline.encode()) > MAX_INLINE_BYTES:
        raise InvalidInput(f"The WorkloadSpec is larger than {MAX_INLINE_BYTES // 1024} KB.")
    try:
        spec = yaml.load(inline, Loader=_NoAliases)  # noqa: S506  (a SafeLoader, without aliases)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"The WorkloadSpec is not valid YAML or JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise InvalidInput("The WorkloadSpec must be a YAML or JSON object.")
    unknown = sorted(set(map(str, spec)) - set(_TOP))
    if unknown:
        raise InvalidInput(f"Unknown WorkloadSpec keys: {', '.join(unknown)}. Valid keys: {', '.join(_TOP)}.")
    benchmark = spec.get("benchmark")
    if not isinstance(benchmark, dict) or "type" not in benchmark:
        raise InvalidInput("The WorkloadSpec must have a benchmark with a type.")
    if benchmark["type"] != "aiperf":
        raise InvalidInput(f"Unsupported benchmark type '{benchmark['type']}': the only supported type is aiperf.")
    return {"benchmark": benchmark, "parameters": _parameters(spec.get("parameters") or {}),
            "secrets": _secrets(spec.get("secrets") or {}), "tooling": _tooling(spec.get("tooling") or {})}


def _parameters(given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise InvalidInput("WorkloadSpec parameters must be an object of parameter names and values.")
    known, out = table()["parameters"], dict(table()["defaults"])
    unknown = sorted(str(k) for k in given if k not in known)
    if unknown:
        raise InvalidInput(f"Unknown WorkloadSpec parameters: {', '.join(unknown)}.")
    for name, value in given.items():
        row = known[name]
        wanted = _TYPES[row["type"]]
        if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
            raise InvalidInput(f"WorkloadSpec parameter {name} must be of type {row['type']}, not {value!r:.64}.")
        canonical = row.get("alias_of", name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(f"WorkloadSpec parameter {name} must be a finite number, not negative.")
            limit = known[canonical].get("maximum")  # an alias is bounded as its flag is
            if limit is not None and value > limit:
                raise InvalidInput(f"WorkloadSpec parameter {name} is {value}; sagemaker-emu runs at most {limit}.")
        if canonical in given and canonical != name:
            raise InvalidInput(f"WorkloadSpec parameters {name} and {canonical} name the same setting; give one.")
        out[canonical] = value
    return out


def _secrets(given: Any) -> dict[str, str]:
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise InvalidInput("WorkloadSpec secrets must be an object of names and Secrets Manager ARNs.")
    plain = sorted(k for k, v in given.items() if not _SECRET_ARN.match(v))
    if plain:
        raise InvalidInput(f"WorkloadSpec secrets must be Secrets Manager secret ARNs; {', '.join(plain)} is not.")
    return dict(given)


def _tooling(given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise InvalidInput("WorkloadSpec tooling must be an object.")
    standard = given.get("api_standard", "openai")
    if standard not in table()["tooling"]["api_standard"]:
        raise InvalidInput(f"Unsupported tooling api_standard '{standard}': the only supported one is openai.")
    return {**given, "api_standard": standard}
