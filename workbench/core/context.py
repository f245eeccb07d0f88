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
