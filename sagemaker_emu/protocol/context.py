"""Facts about a request that every front door needs: region, request id, caller hints."""

from __future__ import annotations

import re

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")
_UA_FEATURES = re.compile(r"(?:^|\s)m/([A-Za-z0-9,+=_-]+)")
WAITER_FEATURE = "B"  # botocore's user-agent feature id for waiters (botocore/useragent.py)


def region_of(authorization: str | None, default: str) -> str:
    """The region of the SigV4 credential scope; `default` for unsigned requests."""
    if authorization:
        match = _CREDENTIAL.search(authorization)
        if match:
            return match.group(1)
    return default


def is_waiter(user_agent: str | None) -> bool:
    """True when botocore marks the call as made by a waiter (`m/...,B,...`)."""
    if not user_agent:
        return False
    match = _UA_FEATURES.search(user_agent)
    return match is not None and WAITER_FEATURE in match.group(1).split(",")
