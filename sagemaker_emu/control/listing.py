"""List* calls: filters, sorting and NextToken paging, shared by every resource kind."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Callable, Iterable

from sagemaker_emu.errors import InvalidInput

DEFAULT_MAX_RESULTS = 10  # documented for ListEndpoints; used for every list call

# Filter member -> (attribute of the resource, test)
_FILTERS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "NameContains": ("name", lambda value, wanted: wanted.lower() in value.lower()),
    "CreationTimeBefore": ("created", lambda value, wanted: value < wanted),
    "CreationTimeAfter": ("created", lambda value, wanted: value >= wanted),
    "LastModifiedTimeBefore": ("modified", lambda value, wanted: value < wanted),
    "LastModifiedTimeAfter": ("modified", lambda value, wanted: value >= wanted),
    "StatusEquals": ("status", lambda value, wanted: value == wanted),
    "EndpointNameEquals": ("endpoint_name", lambda value, wanted: value == wanted),
    "VariantNameEquals": ("variant_name", lambda value, wanted: value == wanted),
}
_SORT_ATTRS = {"Name": "name", "CreationTime": "created", "Status": "status"}


def list_page(
    items: Iterable[Any],
    params: dict[str, Any],
    summarize: Callable[[Any], dict],
    key: str,
    default_max: int = DEFAULT_MAX_RESULTS,
) -> dict[str, Any]:
    """One page of `items` as `{key: [...], "NextToken": ...}`."""
    selected = list(items)
    for member, (attr, test) in _FILTERS.items():
        if member in params:
            selected = [i for i in selected if test(getattr(i, attr), params[member])]
    attr = _SORT_ATTRS[params.get("SortBy", "CreationTime")]
    descending = params.get("SortOrder", "Descending") == "Descending"
    selected.sort(key=lambda i: (str(getattr(i, attr)) if attr == "status" else getattr(i, attr), i.name), reverse=descending)

    query = _fingerprint(params)
    start = _decode_token(params["NextToken"], query) if params.get("NextToken") else 0
    limit = params.get("MaxResults", default_max)
    page = selected[start : start + limit]
    out: dict[str, Any] = {key: [summarize(i) for i in page]}
    if start + limit < len(selected):
        out["NextToken"] = _encode_token(start + limit, query)
    return out


def _fingerprint(params: dict[str, Any]) -> str:
    # A token is only valid for the query that produced it.
    query = {k: v for k, v in params.items() if k not in ("NextToken", "MaxResults")}
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(offset: int, query: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset, "query": query}).encode()).decode()


def _decode_token(token: str, query: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["query"] == query and isinstance(data["offset"], int) and data["offset"] >= 0:
            return data["offset"]
    except (ValueError, KeyError, TypeError, RecursionError):  # any token we did not write
        pass
    raise InvalidInput("The provided pagination token is not valid.")
