"""RunPanel: Run / Cancel, a progress bar with the current step, a status line and an error line."""

from __future__ import annotations

import time
from typing import Any

import ipywidgets as w

from workbench.core.context import ProgressEvent

from ._common import Message, guarded, help_line

__all__ = ["RunPanel"]


class RunPanel(w.VBox):
    """Buttons and feedback only: the dashboard decides what Run and Cancel do (``on_run`` / ``on_cancel``).

    Progress updates come from the worker thread; they are throttled so a fast loop does not flood the
    browser with messages (the last event of a stage always gets through).
    """

    def __init__(self, min_interval_s: float = 0.1):
        self.run_button = w.Button(
            description="Run",
            button_style="primary",
            icon="play",
            tooltip="Measure the chosen settings (the FP32 baseline first, if needed)",
        )
        self.cancel_button = w.Button(
            description="Cancel",
            button_style="warning",
            icon="stop",
            tooltip="Stop the run at the next step; it is recorded as cancelled",
        )
        self.report_button = w.Button(
            description="Export report", icon="file", tooltip="Write an HTML report of this model's candidates"
        )
        self.retime_button = w.Button(
            description="Re-time",
            icon="clock-o",
            tooltip="Time the candidates selected under Compare again, beside the FP32 baseline (none selected: "
            "every candidate whose latency is marked noisy)",
        )
        self.progress = w.FloatProgress(
            value=0.0, min=0.0, max=1.0, description="Progress", layout=w.Layout(width="420px")
        )
        self.step = w.Label(value="idle")
        self.status = Message()
        self.error = Message()
        self.report_out = w.Output()
        self._min_interval = min_interval_s
        self._last = 0.0
        super().__init__(
            [
                w.HBox([self.run_button, self.cancel_button, self.report_button, self.retime_button]),
                help_line(
                    "Run measures the settings above (accuracy on held-out data, latency, size) and adds "
                    "the result to the charts. Cancel stops at the next step. Export report writes an "
                    "HTML report of every candidate of this model. Re-time measures the selected (or the "
                    "noisy, faint) candidates again beside the baseline: do it when the machine is quiet."
                ),
                w.HBox([self.progress, self.step]),
                self.status,
                self.error,
                self.report_out,
            ]
        )

    def on_run(self, fn: Any) -> None:
        self.run_button.on_click(guarded(fn, self.error, "Run"))

    def on_cancel(self, fn: Any) -> None:
        self.cancel_button.on_click(guarded(fn, self.error, "Cancel"))

    def on_report(self, fn: Any) -> None:
        self.report_button.on_click(guarded(fn, self.error, "Export report"))

    def on_retime(self, fn: Any) -> None:
        self.retime_button.on_click(guarded(fn, self.error, "Re-time"))

    def started(self, what: str) -> None:
        self.run_button.disabled = True
        self.progress.value = 0.0
        self.progress.bar_style = ""
        self.step.value = what
        self.error.clear()

    def finished(self, bar_style: str = "success") -> None:
        self.run_button.disabled = False
        self.progress.value = 1.0 if bar_style == "success" else self.progress.value
        self.progress.bar_style = bar_style

    def on_progress(self, ev: ProgressEvent) -> None:
        """A RunContext listener (called on the worker thread)."""
        now = time.monotonic()
        last_of_stage = ev.total is not None and ev.done >= ev.total
        if now - self._last < self._min_interval and not last_of_stage and ev.done != 0:
            return
        self._last = now
        frac = min(1.0, ev.done / ev.total) if ev.total else 0.0
        self.progress.value = frac
        count = f" ({ev.done}/{ev.total})" if ev.total else ""
        self.step.value = f"{ev.stage}{count}" + (f": {ev.message}" if ev.message else "")
