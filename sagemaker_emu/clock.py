"""Time as the emulator's time-driven features see it (`serve --clock-speed K`).

Timestamps in answers are always real (wall time). What the emulator waits for passes K times
faster: an alarm's period of 60 s is evaluated over 60/K s of datapoints and re-evaluated every
60/K s, cooldowns and scaling waits last 1/K as long. Tests and benchmarks speed it up; the
default, 1, is AWS's pace."""

from __future__ import annotations

import threading
import time


class Clock:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("the clock speed must be positive")
        self.speed = speed

    @staticmethod
    def now() -> float:
        """Wall time, for timestamps."""
        return time.time()

    def wall(self, seconds: float) -> float:
        """How long `seconds` of service time take on this clock."""
        return seconds / self.speed

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait `seconds` of service time; True if `stop` was set meanwhile."""
        return stop.wait(self.wall(seconds))
