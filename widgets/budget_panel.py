"""The device-budget panel: latency, size and accuracy limits (tokens/s and perplexity for causal LMs), threads."""

from __future__ import annotations

import math
import os
from typing import Any

import ipywidgets as w

from workbench.core.errors import ConfigError, WorkbenchError
from workbench.tasks.budget import Budget

__all__ = ["BudgetPanel"]

from ._common import LABEL_STYLE, WIDE, Message, section_title, with_help


class BudgetPanel(w.VBox):
    """What the device allows: max p50 latency (ms), max size (MB), max accuracy drop (points), threads.
    For a causal LM (``set_lm(True)``): min decode tokens/s, max size, max perplexity increase (%), threads.

    Empty boxes mean "no limit". ``budget()`` raises ConfigError naming the box on bad input.

    >>> b = BudgetPanel(); b.max_ms.value = "5"; b.budget().max_latency_ms
    5.0
    """

    def __init__(self, budget: Budget | None = None, threads: int | None = None):
        budget = budget or Budget()
        cores = os.cpu_count() or 1

        def text(v: float | None, scale: float = 1) -> str:
            return "" if v is None else f"{v * scale:g}"

        def box(value: str, description: str, placeholder: str = "no limit") -> w.Text:
            return w.Text(
                value=value,
                description=description,
                placeholder=placeholder,
                continuous_update=False,
                style=LABEL_STYLE,
            )

        self.max_ms = box(text(budget.max_latency_ms), "Max latency (ms)")
        self.max_mb = box(text(budget.max_size_mb), "Max size (MB)")
        self.max_drop = box(text(budget.max_accuracy_drop, 100), "Max accuracy drop", "no limit (points, e.g. 1)")
        self.min_tok_s = box(text(budget.min_tokens_per_s), "Min tokens/s")
        self.max_ppl = box(text(budget.max_perplexity_increase, 100), "Max perplexity +%", "no limit (%, e.g. 5)")
        self.lm = False
        t = threads or cores
        self.threads = w.IntSlider(
            value=min(t, max(cores, t)),
            min=1,
            max=max(cores, t),
            description="Threads",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        self.error = Message()
        self._ms_box = with_help(
            self.max_ms, "Slowest acceptable median time for one input, in milliseconds. Empty = no limit."
        )
        self._drop_box = with_help(
            self.max_drop,
            "How many accuracy points you accept to lose vs. FP32 (1 = 1 %, e.g. 98.5 % → 97.5 %). Empty = no limit.",
        )
        self._tok_box = with_help(
            self.min_tok_s,
            "Slowest acceptable text generation, in new tokens per second (reading speed is about 5). "
            "Empty = no limit.",
        )
        self._ppl_box = with_help(
            self.max_ppl,
            "How much worse the model may predict text than FP32: perplexity increase in % (5 = 30.0 → 31.5). "
            "Empty = no limit.",
        )
        super().__init__(
            [
                section_title("Budget"),
                self._ms_box,
                self._tok_box,
                with_help(self.max_mb, "Largest acceptable model file, in megabytes. Empty = no limit."),
                self._drop_box,
                self._ppl_box,
                with_help(
                    self.threads,
                    "CPU threads the model may use: fewer threads imitate a smaller device. "
                    "Latency is measured with this many.",
                ),
                self.error,
            ]
        )
        for c in self.limits:
            c.observe(self._validate, names="value")
        self.set_lm(False)

    @property
    def limits(self) -> list[w.Text]:
        """Every limit box (those of the other kind of model are hidden, and ignored by ``budget()``)."""
        return [self.max_ms, self.max_mb, self.max_drop, self.min_tok_s, self.max_ppl]

    @property
    def controls(self) -> list[w.Widget]:
        return [*self.limits, self.threads]

    def set_lm(self, lm: bool) -> None:
        """Show the causal-LM limits (tokens/s, perplexity) instead of latency and accuracy drop, or back."""
        self.lm = bool(lm)
        for box, show in ((self._ms_box, not lm), (self._drop_box, not lm), (self._tok_box, lm), (self._ppl_box, lm)):
            box.layout.display = "" if show else "none"
        self._validate()

    def _validate(self, _change: Any = None) -> None:
        try:
            self.budget()
        except WorkbenchError as e:
            self.error.show(str(e), "error")
        else:
            self.error.clear()

    def budget(self) -> Budget:
        mb = _number(self.max_mb.value, "Max size (MB)", "max_size_mb")
        if self.lm:
            ppl = _number(self.max_ppl.value, "Max perplexity +%", "max_perplexity_increase")
            return Budget(
                max_size_mb=mb,
                min_tokens_per_s=_number(self.min_tok_s.value, "Min tokens/s", "min_tokens_per_s"),
                max_perplexity_increase=None if ppl is None else ppl / 100,
            )
        ms = _number(self.max_ms.value, "Max latency (ms)", "max_latency_ms")
        drop = _number(self.max_drop.value, "Max accuracy drop", "max_accuracy_drop")
        if drop is not None and drop > 100:
            raise ConfigError(
                f"The 'Max accuracy drop' box must be a number of points in [0, 100], or empty for "
                f"no limit. Got {self.max_drop.value.strip()!r} instead."
            )
        return Budget(
            max_latency_ms=ms,
            max_size_mb=mb,
            max_accuracy_drop=None if drop is None else drop / 100,
        )


def _number(text: str, box: str, field: str) -> float | None:
    text = (text or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(
            f"The {box!r} box must be a number like 5 or 0.5, or empty for no limit. Got {text!r} instead."
        ) from None
    zero_ok = field in ("max_accuracy_drop", "max_perplexity_increase")
    if not math.isfinite(v) or v < 0 or (v == 0 and not zero_ok):
        valid = "a number >= 0" if zero_ok else "a number > 0"
        raise ConfigError(f"The {box!r} box must be {valid}, or empty for no limit. Got {text!r} instead.")
    return v
