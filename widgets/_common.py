"""Small helpers shared by the panels: help text, message lines, thread-safe output replacement."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from workbench import WorkbenchError
from workbench.tasks import fmt_mb, fmt_ms, fmt_pct

__all__ = [
    "WIDE",
    "LABEL_STYLE",
    "section_title",
    "help_line",
    "with_help",
    "Message",
    "Worker",
    "replace_output",
    "fmt_ms",
    "fmt_mb",
    "fmt_pct",
]

_HELP_STYLE = "color:#555;font-size:12px;line-height:1.3"


def help_line(text: str) -> w.HTML:
    """A short grey explanation under a control: visible without hovering (workshops, tablets)."""
    return w.HTML(f'<div style="{_HELP_STYLE}">{html.escape(text)}</div>', layout=w.Layout(margin="0 0 6px 8px"))


def with_help(control: w.Widget, text: str) -> w.VBox:
    """``control`` with its help text below it; the same text as a tooltip on hover."""
    if hasattr(control, "tooltip"):
        control.tooltip = text
    return w.VBox([control, help_line(text)])


class Message(w.HTML):
    """A status/error line. ``show(text, kind)`` escapes the text and colours it by kind."""

    _COLORS = {"info": "#333", "ok": "#2e7d32", "warn": "#b26a00", "error": "#c62828"}

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.kind = ""
        self.text = ""

    def show(self, text: str, kind: str = "info") -> None:
        self.kind, self.text = kind, text
        if not text:
            self.value = ""
            return
        body = html.escape(text).replace("\n", "<br>")
        weight = "bold" if kind == "error" else "normal"
        self.value = f'<div class="wb-{kind}" style="color:{self._COLORS[kind]};font-weight:{weight}">{body}</div>'

    def clear(self) -> None:
        self.show("")


def guarded(fn: Any, message: Any, what: str = "") -> Any:
    """A button handler that shows any exception in ``message`` (a Message, or a ``show(text, kind)`` callable;
    the kernel and the panel stay usable): a WorkbenchError as its own words, anything else with its type, so
    nothing escapes into the notebook log."""
    show = message.show if hasattr(message, "show") else message

    def handler(*_args: Any) -> Any:
        try:
            return fn()
        except WorkbenchError as e:
            show(str(e), "error")
        except Exception as e:  # a bug or an OS error (an uncreatable folder): say it here, not in the log
            show(f"{what + ' failed: ' if what else ''}{type(e).__name__}: {e}", "error")
        return None

    return handler


def replace_output(out: w.Output, obj: Any) -> None:
    """Show ``obj`` as the only output of ``out``. Safe from a worker thread (no ``with out:``).

    Formats ``obj`` like ``Output.append_display_data`` does, but swaps the outputs in one trait
    assignment: clearing first and appending after would make the page jump between two messages.
    """
    from IPython.core.interactiveshell import InteractiveShell

    data, metadata = InteractiveShell.instance().display_formatter.format(obj)
    out.outputs = ({"output_type": "display_data", "data": data, "metadata": metadata},)


class Worker:
    """ONE background thread for all long work (loading, runs, reports): the kernel stays free to
    receive clicks, and two jobs never compete for the same 2 cores. ``busy`` is true while a job runs."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-worker")
        self.future: Any = None
        self.label = ""

    @property
    def busy(self) -> bool:
        return self.future is not None and not self.future.done()

    def submit(self, label: str, fn: Any, *args: Any, **kwargs: Any):
        self.label = label
        self.future = self._pool.submit(fn, *args, **kwargs)
        return self.future

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the current job ends (tests, scripts); returns its result."""
        return None if self.future is None else self.future.result(timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


#: the width and label style the settings panels share
WIDE = w.Layout(width="420px")
LABEL_STYLE = {"description_width": "130px"}


def section_title(text: str) -> w.HTML:
    return w.HTML(f"<b>{text}</b>")
