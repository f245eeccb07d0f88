"""LMRecipePanel: what to do to a causal LM, chosen among the named ``lm-*`` recipes.

The precision slider's steps (a plain ONNX export, static INT8 with calibration...) are the classifier
chains; a decoder needs its KV cache exported and weight-only quantization. The dashboard shows this
panel instead of the slider when the chosen model is a causal LM. Each choice is a registered recipe, so
a setting measured here and ``workbench optimize smollm2 --recipe lm-int8`` share a run-store key.

>>> p = LMRecipePanel(); p.choice.value = "lm-int8"; [s.kind for s in p.recipe().steps]
['lm-onnx-export', 'lm-weight-only']
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from workbench.lm import LM_RECIPES
from workbench.recipes.registry import Recipe, get_recipe

from ._common import help_line

__all__ = ["LMRecipePanel", "FP32"]

#: the choice that measures the unmodified model (the baseline)
FP32 = "fp32"
_FP32_HELP = "the unmodified model in 32-bit floats: the reference every other setting is compared with"


class LMRecipePanel(w.VBox):
    """One dropdown of LM recipes, the chosen one's description and steps below it."""

    def __init__(self, value: str = FP32):
        options = [("FP32 (unmodified)", FP32)] + [(r.name, r.name) for r in LM_RECIPES]
        self.choice = w.Dropdown(
            options=options,
            value=value,
            description="LM recipe",
            style={"description_width": "80px"},
            layout=w.Layout(width="470px"),
        )
        self.choice.tooltip = "What to do to the language model; the chart shows tokens/s against perplexity."
        self.step_help = w.HTML()
        super().__init__(
            [
                w.HTML("<b>Language model</b>"),
                self.choice,
                self.step_help,
                help_line(
                    "Perplexity (lower is better) says how well the model predicts held-out text; "
                    "tokens/s is the decode speed with the KV cache at batch 1."
                ),
            ]
        )
        self.choice.observe(self._describe, names="value")
        self._describe()

    @property
    def controls(self) -> list[w.Widget]:
        return [self.choice]

    def recipe(self) -> Recipe | None:
        """The chosen recipe (None = the FP32 baseline)."""
        return None if self.choice.value == FP32 else get_recipe(self.choice.value)

    def _describe(self, _change: Any = None) -> None:
        r = self.recipe()
        if r is None:
            text = _FP32_HELP
        else:
            steps = " → ".join(s.kind for s in r.steps)
            text = f"{r.description} (steps: {steps})"
        self.step_help.value = f'<div style="color:#333;font-size:12px">{html.escape(text)}</div>'
