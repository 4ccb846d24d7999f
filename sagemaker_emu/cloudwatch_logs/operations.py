"""CloudWatch Logs' operations over the log store (the reads, and DeleteLogGroup): the dispatch
table (name -> function of the region and the validated input)."""

from __future__ import annotations

import shlex
from typing import Callable

from sagemaker_emu import arns
from sagemaker_emu.cloudwatch_logs.store import Event, Group, LogStore
from sagemaker_emu.errors import ServiceError
from sagemaker_emu.paging import page

PAGE = 50  # DescribeLogGroups / DescribeLogStreams default page
EVENTS = 10_000  # GetLogEvents / FilterLogEvents default limit


def matches(pattern: str, message: str) -> bool:
    """CloudWatch's filter pattern for terms: every plain term (or "quoted phrase") must occur,
    at least one `?term` when there are any, and no `-term`. JSON and space-delimited patterns
    (`{ ... }`, `[ ... ]`) are refused before this is called."""
    try:
        terms = shlex.split(pattern)
    except ValueError:
        terms = pattern.split()
    required = [t for t in terms if not t.startswith(("?", "-"))]
    optional = [t[1:] for t in terms if t.startswith("?") and len(t) > 1]
    excluded = [t[1:] for t in terms if t.startswith("-") and len(t) > 1]
    return (all(t in message for t in required) and (not optional or any(t in message for t in optional))
            and not any(t in message for t in excluded))


def _page(items: list, member: str, p: dict, default: int) -> dict:
    return page(items, member, p.get("nextToken"), p.get("limit", default), "nextToken")


def operations(store: LogStore, account: str) -> dict[str, Callable[[str, dict], dict]]:
    def group_of(region: str, p: dict) -> Group:
        name = p.get("logGroupName") or (p.get("logGroupIdentifier") or "").split(":log-group:")[-1].removesuffix(":*")
        group = store.group(region, name)
        if group is None:
            raise ServiceError("ResourceNotFoundException", "The specified log group does not exist.")
        return group

    def arn(region: str, name: str) -> str:
        return arns.arn("logs", region, account, f"log-group:{name}")

    def describe_log_groups(region: str, p: dict) -> dict:
        groups = [g for g in store.groups(region) if g.name.startswith(p.get("logGroupNamePrefix", ""))
                  and p.get("logGroupNamePattern", "") in g.name]
        return _page([{"logGroupName": g.name, "creationTime": g.created, "metricFilterCount": 0,
                       "arn": arn(region, g.name) + ":*", "logGroupArn": arn(region, g.name),
                       "storedBytes": sum(s.size for s in g.streams.values()), "logGroupClass": "STANDARD"}
                      for g in groups], "logGroups", p, PAGE)

    def describe_log_streams(region: str, p: dict) -> dict:
        group = group_of(region, p)
        streams = [s for s in group.streams.values() if s.name.startswith(p.get("logStreamNamePrefix", ""))]
        if "logStreamNamePrefix" in p and p.get("orderBy") == "LastEventTime":
            raise ServiceError("InvalidParameterException",
                               "Cannot order by LastEventTime with a logStreamNamePrefix.")
        views = []
        for s in streams:
            events = store.events(s)
            view = {"logStreamName": s.name, "creationTime": s.created, "storedBytes": s.size,
                    "arn": f"{arn(region, group.name)}:log-stream:{s.name}"}
            if events:
                view.update(firstEventTimestamp=events[0].timestamp, lastEventTimestamp=events[-1].timestamp,
                            lastIngestionTime=events[-1].ingested)
            views.append(view)
        key = (lambda v: v.get("lastEventTimestamp", 0)) if p.get("orderBy") == "LastEventTime" else \
            (lambda v: v["logStreamName"])
        views.sort(key=key, reverse=bool(p.get("descending")))
        return _page(views, "logStreams", p, PAGE)

    def in_window(e: Event, p: dict) -> bool:
        return p.get("startTime", 0) <= e.timestamp and ("endTime" not in p or e.timestamp < p["endTime"])

    def get_log_events(region: str, p: dict) -> dict:
        group = group_of(region, p)
        stream = group.streams.get(p["logStreamName"])
        if stream is None:
            raise ServiceError("ResourceNotFoundException", "The specified log stream does not exist.")
        events = [e for e in store.events(stream) if in_window(e, p)]
        limit, token = p.get("limit", EVENTS), p.get("nextToken", "")
        if token.startswith("f/") and token[2:].isdigit():
            after = int(token[2:])
            page = [e for e in events if e.sequence > after][:limit]
        elif token.startswith("b/") and token[2:].isdigit():
            before = int(token[2:])
            page = [e for e in events if e.sequence < before][-limit:]
        else:
            page = events[:limit] if p.get("startFromHead") else events[-limit:]
        last = page[-1].sequence if page else (int(token[2:]) if token[2:].isdigit() else 0)
        first = page[0].sequence if page else last
        return {"events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingested}
                           for e in page],
                "nextForwardToken": f"f/{last:056d}", "nextBackwardToken": f"b/{first:056d}"}

    def filter_log_events(region: str, p: dict) -> dict:
        group = group_of(region, p)
        pattern = p.get("filterPattern", "").strip()
        if pattern.startswith(("{", "[")):
            raise ServiceError("InvalidParameterException", "sagemaker-emu matches filter patterns of terms and "
                               "quoted phrases (with ? and -); JSON and space-delimited patterns are not supported.")
        streams = [s for name, s in sorted(group.streams.items())
                   if (not p.get("logStreamNames") or name in p["logStreamNames"])
                   and name.startswith(p.get("logStreamNamePrefix", ""))]
        found = sorted(((s.name, e) for s in streams for e in store.events(s)
                        if in_window(e, p) and matches(pattern, e.message)), key=lambda item: item[1].sequence)
        events = [{"logStreamName": name, "timestamp": e.timestamp, "message": e.message,
                   "ingestionTime": e.ingested, "eventId": f"{e.sequence:056d}"} for name, e in found]
        out = _page(events, "events", p, EVENTS)
        out["searchedLogStreams"] = [{"logStreamName": s.name, "searchedCompletely": True} for s in streams]
        return out

    def delete_log_group(region: str, p: dict) -> dict:
        if not store.clear(region, p["logGroupName"]):
            raise ServiceError("ResourceNotFoundException", "The specified log group does not exist.")
        return {}

    return {"DeleteLogGroup": delete_log_group, "DescribeLogGroups": describe_log_groups,
            "DescribeLogStreams": describe_log_streams, "GetLogEvents": get_log_events,
            "FilterLogEvents": filter_log_events}
