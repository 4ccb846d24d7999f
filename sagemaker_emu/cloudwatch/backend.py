"""CloudWatch's state, moto-style: the metric stores and alarms of every region, and the only
code that changes them. A thread evaluates each alarm once per period (as the clock runs) and
runs the actions of a state it enters; Application Auto Scaling's policy actions run again at
every evaluation while the alarm stays in that state, as AWS does for scaling actions."""

from __future__ import annotations

import collections
import copy
import json
import logging
import threading
import time
from typing import Any, Callable, Iterable

from sagemaker_emu import arns
from sagemaker_emu.clock import Clock
from sagemaker_emu.cloudwatch import queries
from sagemaker_emu.cloudwatch.alarms import ALARM, Alarm, AlarmAction, decide
from sagemaker_emu.cloudwatch.invocations import InvocationMetrics
from sagemaker_emu.cloudwatch.series import MetricStore, Point
from sagemaker_emu.errors import ServiceError
from sagemaker_emu.events import Events

log = logging.getLogger("sagemaker_emu.cloudwatch")

MAX_ALARMS = 5000  # per region (AWS's default quota is higher; this bounds memory and evaluation)
MAX_HISTORY = 10_000  # alarm history items kept per region, newest last (deleted alarms' too, as on AWS)
TICK_S = 0.1  # how often the evaluator looks for alarms that are due (wall seconds)


def _parsed(text: str) -> Any:
    """StateReasonData as the history shows it: the JSON it holds, or the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_scaling(arn: str) -> bool:
    return arns.service_of(arn) == "autoscaling" and ":scalingPolicy:" in arn


class CloudWatch:
    def __init__(self, account: str, clock: Clock, events: Events | None = None) -> None:
        self.account = account
        self.clock = clock
        self.events = events or Events()  # where an alarm's actions go (AlarmAction)
        self._stores: dict[str, MetricStore] = {}
        self.invocations = InvocationMetrics(self.store)  # the per-invocation fast path
        self._alarms: dict[str, dict[str, Alarm]] = {}  # region -> name -> alarm
        self._history: dict[str, collections.deque] = {}  # region -> DescribeAlarmHistory's items
        self._tags: dict[str, dict[str, str]] = {}  # alarm ARN -> tags
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ metrics

    def store(self, region: str) -> MetricStore:
        store = self._stores.get(region)
        if store is None:
            with self._lock:
                store = self._stores.setdefault(region, MetricStore())
        return store

    def reading(self, region: str) -> MetricStore:
        """The store, with every invocation so far folded in: for anything that reads it."""
        self.invocations.fold()
        return self.store(region)

    def record(self, region: str, points: list[Point]) -> None:
        """A sink for datapoints (the runtime's other metrics, the usage sampler)."""
        self.store(region).put(points)

    # ------------------------------------------------------------ alarms

    def put_alarm(self, region: str, spec: dict[str, Any]) -> None:
        name = spec["AlarmName"]
        with self._lock:
            alarms = self._alarms.setdefault(region, {})
            if name not in alarms and len(alarms) >= MAX_ALARMS:
                raise ServiceError("LimitExceededFault", f"The maximum number of alarms ({MAX_ALARMS}) has been reached.")
            now = self.clock.now()
            old = alarms.get(name)
            alarm = Alarm(name, arns.arn("cloudwatch", region, self.account, f"alarm:{name}"), region, spec, now,
                          state_updated=now, transitioned=now)
            if old is not None:  # an update keeps the state until the next evaluation
                alarm.state, alarm.reason, alarm.reason_data = old.state, old.reason, old.reason_data
                alarm.state_updated, alarm.transitioned = old.state_updated, old.transitioned
            else:  # tags come with the creation only; TagResource changes them after
                self._tags[alarm.arn] = {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
            alarms[name] = alarm
            verb, kind = ("updated", "Update") if old is not None else ("created", "Create")
            self._note(alarm, "ConfigurationUpdate", f'Alarm "{name}" {verb}', {"type": kind, "alarm": alarm.describe()})
        self._ensure_evaluator()

    def _note(self, alarm: Alarm, kind: str, summary: str, data: dict[str, Any]) -> None:
        """Under the lock: an item of the alarm's history."""
        history = self._history.setdefault(alarm.region, collections.deque(maxlen=MAX_HISTORY))
        history.append({"AlarmName": alarm.name, "AlarmType": "MetricAlarm", "Timestamp": self.clock.now(),
                        "HistoryItemType": kind, "HistorySummary": summary,
                        "HistoryData": json.dumps({"version": "1.0", **data}, default=str)})

    def history(self, region: str) -> list[dict[str, Any]]:
        """DescribeAlarmHistory's items, oldest first."""
        with self._lock:
            return list(self._history.get(region, ()))

    def tagging(self, region: str, arn: str, add: dict[str, str], remove: Iterable[str] = ()) -> dict[str, str]:
        """An alarm's tags, after adding `add` and removing `remove`."""
        with self._lock:
            if not any(a.arn == arn for a in self._alarms.get(region, {}).values()):
                raise ServiceError("ResourceNotFoundException", f"The resource {arn} was not found.")
            tags = self._tags.setdefault(arn, {})
            tags.update(add)
            for key in remove:
                tags.pop(key, None)
            return dict(tags)

    def alarms(self, region: str) -> list[Alarm]:
        with self._lock:
            return list(self._alarms.get(region, {}).values())

    def state(self, region: str, name: str) -> str | None:
        """An alarm's state, or None if there is no such alarm (guarded deployments read it)."""
        alarm = self._alarms.get(region, {}).get(name)
        return alarm.state if alarm is not None else None

    def delete_alarms(self, region: str, names: Iterable[str]) -> None:
        with self._lock:
            alarms = self._alarms.get(region, {})
            missing = [n for n in names if n not in alarms]
            if missing:
                raise ServiceError("ResourceNotFound", f"Alarm(s) not found: {', '.join(missing)}")
            for name in names:
                self._tags.pop(alarms.pop(name).arn, None)

    def set_actions_enabled(self, region: str, names: Iterable[str], enabled: bool) -> None:
        with self._lock:
            for name in names:
                alarm = self._alarms.get(region, {}).get(name)
                if alarm is not None:
                    alarm.spec["ActionsEnabled"] = enabled

    def set_state(self, region: str, name: str, state: str, reason: str, reason_data: str | None) -> None:
        with self._lock:
            alarm = self._alarms.get(region, {}).get(name)
            if alarm is None:
                raise ServiceError("ResourceNotFound", f"Alarm {name} not found")
            moved, actions = self._move(alarm, state, reason, reason_data)
        self._run(moved, state, actions)

    def _move(self, alarm: Alarm, state: str, reason: str, reason_data: str | None) -> tuple[Alarm, list[str]]:
        """Under the lock: set the state. Returns the alarm as it is now (its actions run outside
        the lock, and a notification must describe this change, not a later one) and the
        actions to run."""
        now = self.clock.now()
        changed = state != alarm.state
        if changed:
            self._note(alarm, "StateUpdate", f"Alarm updated from {alarm.state} to {state}", {
                "oldState": {"stateValue": alarm.state, "stateReason": alarm.reason},
                "newState": {"stateValue": state, "stateReason": reason,
                             **({"stateReasonData": _parsed(reason_data)} if reason_data else {})}})
            alarm.previous, alarm.state, alarm.transitioned = alarm.state, state, now
        alarm.reason, alarm.reason_data, alarm.state_updated = reason, reason_data, now
        if not alarm.actions_enabled:
            return alarm, []
        return copy.copy(alarm), [a for a in alarm.actions(state) if changed or (_is_scaling(a) and state == ALARM)]

    def _run(self, alarm: Alarm, state: str, actions: list[str]) -> None:
        for arn in actions:
            done = self.events.publish(AlarmAction(arn, alarm, state))
            summary = f"{'Successfully executed' if done else 'Failed to execute'} action {arn}"
            with self._lock:
                self._note(alarm, "Action", summary, {"actionState": "Succeeded" if done else "Failed",
                                                      "notificationResource": arn, "stateValue": state})

    # ------------------------------------------------------------ evaluation

    def _ensure_evaluator(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._evaluate_forever, daemon=True, name="cloudwatch-alarms")
                self._thread.start()

    def _evaluate_forever(self) -> None:
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            for alarm in [a for region in list(self._alarms.values()) for a in list(region.values())]:
                if now >= alarm.next_evaluation:
                    # On a fixed beat, not from whenever this tick ran: the windows then tile time,
                    # and no second of datapoints is skipped or seen twice.
                    step = self.clock.wall(self._period(alarm))
                    beat = alarm.next_evaluation + step if alarm.next_evaluation else now + step
                    alarm.next_evaluation = beat if beat > now else now + step
                    try:
                        self.evaluate(alarm)
                    except Exception:
                        log.exception("alarm %s could not be evaluated", alarm.name)

    @staticmethod
    def _period(alarm: Alarm) -> float:
        if "Period" in alarm.spec:
            return float(alarm.spec["Period"])
        return float(min(q["MetricStat"]["Period"] for q in alarm.spec.get("Metrics", []) if "MetricStat" in q))

    def evaluate(self, alarm: Alarm) -> None:
        """Decide the alarm's state from its last periods (each `Period / speed` wall seconds,
        at least one second, the store's resolution)."""
        spec = alarm.spec
        period = max(1.0, self.clock.wall(self._period(alarm)))
        count = spec["EvaluationPeriods"]
        end = float(int(self.clock.now()))  # complete seconds only: the next evaluation sees this one whole
        start = end - period * count
        store = self.reading(alarm.region)
        if "Metrics" in spec:
            results = queries.run(store, spec["Metrics"], start, end, period)
            shown = next(q["Id"] for q in spec["Metrics"] if q.get("ReturnData", True))
            values_by_time = results.get(shown, {})
        else:
            metric: dict[str, Any] = {k: spec[k] for k in ("Namespace", "MetricName", "Dimensions") if k in spec}
            stat = spec.get("Statistic") or spec.get("ExtendedStatistic", "Average")
            values_by_time = queries.stat_values(store, metric, stat, start, end, period)
        values = [values_by_time.get(start + i * period) for i in reversed(range(count))]
        state, reason, data = decide(alarm, values)
        with self._lock:
            if self._alarms.get(alarm.region, {}).get(alarm.name) is not alarm:
                return  # deleted or replaced meanwhile
            moved, actions = self._move(alarm, state, reason, data)
        self._run(moved, state, actions)

    # ------------------------------------------------------------ lifecycle

    def forget_metrics(self, match: Callable[[tuple], bool]) -> None:
        for store in list(self._stores.values()):
            store.forget(match)

    def reset(self) -> None:
        with self._lock:
            self._alarms.clear()
            self._history.clear()
            self._tags.clear()
            self.invocations.fold()
            for store in self._stores.values():
                store.reset()

    def stop(self) -> None:
        self._stop.set()
