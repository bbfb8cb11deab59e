"""SRS's circuit breaker (``circuit_breaker {}``): water levels from the process's CPU.

Once a second the process's CPU percentage is fed to :meth:`CircuitBreaker.sample`,
which keeps SRS's three water levels (``srs_app_threads.cpp``):

- **high**: set for ``high_pulse`` seconds each time the CPU is above ``high_threshold``
  (90%); it then counts down while the CPU is lower.  WebRTC stops asking publishers
  for lost packets (NACK).
- **critical**: the same with ``critical_threshold`` (95%) and ``critical_pulse``.
  WebRTC stops answering NACKs and sending TWCC feedback; beyond SRS, new players of
  every protocol are refused (:class:`~srs_twisted.errors.Overloaded`) so the players
  already connected keep the whole stream.
- **dying**: the CPU above ``dying_threshold`` (99%) for ``dying_pulse`` seconds in a
  row; ends at once when it is lower.

A higher level implies the lower ones.  No Twisted here: the service samples.
"""

from __future__ import annotations

from typing import Callable


class CircuitBreaker:
    def __init__(self, config, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.log = log
        self.percent = 0.0
        self.refused = 0  # players refused while critical
        self._high = self._critical = self._dying = 0

    @property
    def enabled(self) -> bool:
        return bool(self.config.enabled)

    @property
    def dying(self) -> bool:
        pulse = self.config.dying_pulse
        return self.enabled and bool(pulse) and self._dying >= pulse

    @property
    def critical(self) -> bool:
        return self.enabled and (self.dying or self._critical > 0)

    @property
    def high(self) -> bool:
        return self.enabled and (self.critical or self._high > 0)

    def level(self) -> str:
        return "dying" if self.dying else "critical" if self.critical else "high" if self.high else "normal"

    def sample(self, percent: float) -> None:
        """One reading of the process's CPU, in percent of one core."""
        c = self.config
        before = self.level()
        self.percent = percent
        if percent > c.high_threshold:
            self._high = c.high_pulse
        elif self._high > 0:
            self._high -= 1
        if percent > c.critical_threshold:
            self._critical = c.critical_pulse
        elif self._critical > 0:
            self._critical -= 1
        if percent > c.dying_threshold:
            self._dying = min(c.dying_pulse + 1, self._dying + 1)
        else:
            self._dying = 0
        after = self.level()
        if self.log is not None and after != before:
            self.log(f"CircuitBreaker: cpu={percent:.2f}%, level {before} -> {after} (high={c.high_pulse}x"
                     f"{c.high_threshold}, critical={c.critical_pulse}x{c.critical_threshold}, "
                     f"dying={c.dying_pulse}x{c.dying_threshold})")

    def check_play(self) -> str | None:
        """Why a new player is refused now, or None when it may play."""
        if not self.critical:
            return None
        self.refused += 1
        return (f"circuit breaker: cpu {self.percent:.0f}% is above critical_threshold "
                f"{self.config.critical_threshold}%, new players are refused")
