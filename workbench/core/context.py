"""Run context: progress reporting and cooperative cancellation.

Passes call ``ctx.step(...)`` at every natural boundary (a calibration batch, a training step, a
benchmark round). ``step`` raises :class:`CancelledError` once ``cancel()`` has been called, so a
cancelled run stops at the next boundary and never leaves a half-written artifact behind (passes
write into a temporary folder that is only moved into place when they finish).

>>> ctx = RunContext()
>>> ctx.begin("demo", total=2); ctx.step(); ctx.step()
>>> ctx.events[-1].done
2
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import CancelledError

__all__ = ["ProgressEvent", "RunContext", "TqdmReporter"]


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # e.g. "minilm / ort-int8-dynamic / dynamic-int8"
    done: int
    total: int | None
    message: str = ""
    time: float = 0.0


class RunContext:
    """Carries the progress callbacks and the cancel flag through a run (thread-safe)."""

    def __init__(
        self,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        keep_events: int = 1000,
        timing: Callable[[], contextlib.AbstractContextManager] | None = None,
    ):
        #: ``timing()`` wraps every latency measurement of the run (e.g. a Ray worker holds its node
        #: exclusively while timing, so trials sharing a node never time each other)
        self.timing = timing
        self._cancel = threading.Event()
        self._listeners: list[Callable[[ProgressEvent], None]] = [on_progress] if on_progress else []
        self._stage = ""
        self._done = 0
        self._total: int | None = None
        self._keep = keep_events
        self.events: list[ProgressEvent] = []

    def timed(self) -> contextlib.AbstractContextManager:
        """The context every latency measurement runs in (nothing special unless ``timing`` was given)."""
        return self.timing() if self.timing is not None else contextlib.nullcontext()

    # ---- cancellation ----------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise CancelledError if cancel() was called."""
        if self._cancel.is_set():
            raise CancelledError(f"cancelled during {self._stage or 'the run'}")

    # ---- progress ---------------------------------------------------------------------
    def add_listener(self, fn: Callable[[ProgressEvent], None]) -> None:
        self._listeners.append(fn)

    def begin(self, stage: str, total: int | None = None, message: str = "") -> None:
        self.check()
        self._stage, self._done, self._total = stage, 0, total
        self._emit(message)

    def step(self, n: int = 1, message: str = "") -> None:
        """Advance progress by n and honour a pending cancel."""
        self.check()
        self._done += n
        self._emit(message)

    def _emit(self, message: str) -> None:
        ev = ProgressEvent(self._stage, self._done, self._total, message, time.monotonic())
        self.events.append(ev)
        if len(self.events) > self._keep:
            del self.events[: len(self.events) - self._keep]
        for fn in self._listeners:
            fn(ev)


class TqdmReporter:
    """Progress listener drawing one tqdm bar per stage (CLI). tqdm is imported lazily."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self._bar = None
        self._stage = None

    def __call__(self, ev: ProgressEvent) -> None:
        if self.disable:
            return
        from tqdm.auto import tqdm

        if ev.stage != self._stage:
            self.close()
            self._stage = ev.stage
            self._bar = tqdm(total=ev.total, desc=ev.stage, leave=False, dynamic_ncols=True)
        assert self._bar is not None
        self._bar.n = ev.done
        if ev.message:
            self._bar.set_postfix_str(ev.message, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LineReporter:
    """Progress as plain lines, for output that is not a terminal (CI logs, ``make demo | tee``, notebooks run
    headless): one line when a stage starts, then at most one every ``interval`` seconds with the steps done
    and an estimate of the time left in that stage, and one when it ends.

    >>> import io; out = io.StringIO(); rep = LineReporter(out, clock=iter([0, 30, 60, 60]).__next__)
    >>> for done in (0, 5, 10): rep(ProgressEvent("latency", done, 10))
    >>> rep.close(); print(out.getvalue().splitlines()[1])
    [    30 s] latency: 5/10, about 30 s left
    """

    def __init__(self, stream=None, *, interval: float = 10.0, clock: Callable[[], float] | None = None):
        import sys
        import time

        self._out = stream if stream is not None else sys.stderr
        self._clock = clock or time.monotonic
        self._interval = interval
        self._t0: float | None = None
        self._stage: str | None = None
        self._stage_t0 = 0.0
        self._last = 0.0
        self._last_ev: ProgressEvent | None = None

    def _line(self, now: float, text: str) -> None:
        assert self._t0 is not None
        print(f"[{now - self._t0:6.0f} s] {text}", file=self._out, flush=True)

    def __call__(self, ev: ProgressEvent) -> None:
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        if ev.stage != self._stage:
            self._finish(now)
            self._stage, self._stage_t0, self._last = ev.stage, now, now
            total = f" ({ev.total} steps)" if ev.total else ""
            self._line(now, f"{ev.stage}{total}" + (f": {ev.message}" if ev.message else ""))
        elif now - self._last >= self._interval:
            self._last = now
            self._line(now, self._status(ev, now))
        self._last_ev = ev

    def _status(self, ev: ProgressEvent, now: float) -> str:
        text = f"{ev.stage}: {ev.done}/{ev.total}" if ev.total else f"{ev.stage}: {ev.done} steps"
        if ev.total and 0 < ev.done < ev.total:
            left = (now - self._stage_t0) / ev.done * (ev.total - ev.done)
            text += f", about {left:.0f} s left"
        return text + (f" ({ev.message})" if ev.message else "")

    def _finish(self, now: float) -> None:
        ev = self._last_ev
        if ev is not None and self._stage is not None and now - self._stage_t0 >= 1.0:
            self._line(now, f"{self._stage}: done in {now - self._stage_t0:.0f} s")
        self._last_ev = None

    def close(self) -> None:
        if self._t0 is not None:
            self._finish(self._clock())
            self._stage = None


def cli_reporter(quiet: bool = False, force_bars: bool = False):
    """The progress listener a command uses: bars on a terminal, plain lines elsewhere, nothing when quiet
    (``--json``: the output is the JSON alone)."""
    import sys

    if quiet:
        return TqdmReporter(disable=True)
    if force_bars or sys.stderr.isatty():
        return TqdmReporter()
    return LineReporter(sys.stderr)
