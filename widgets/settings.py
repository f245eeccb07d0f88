"""The setting panels: quantization, pruning, distillation, budget. They hold values, not compute."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.recipes.advice import precision_note
from workbench.recipes.compose import (
    BLOCK_SIZES,
    CALIBRATIONS,
    EDGE_PRECISIONS,
    FORMAT_HELP,
    FORMATS,
    PRECISION_HELP,
    PRECISIONS,
    optional_pass,
)

from ._common import LABEL_STYLE, WIDE, Message, help_line, section_title, with_help

__all__ = ["QuantizationPanel", "PruningPanel", "DistillationPanel", "PRECISION_LABELS", "FORMAT_LABELS"]

PRECISION_LABELS = {
    "fp32": "FP32",
    "bf16": "BF16",
    "fp16": "FP16",
    "int8-dynamic": "INT8 dynamic",
    "int8-static": "INT8 static",
    "int4": "INT4",
}
FORMAT_LABELS = {"onnx": "ONNX Runtime", "executorch": "ExecuTorch (.pte)", "litert": "LiteRT (.tflite)"}


class QuantizationPanel(w.VBox):
    """A precision slider FP32 → BF16 → FP16 → INT8 dynamic → INT8 static → INT4, and only the options
    that matter for the chosen step (per-channel for INT8, calibration for static INT8, block size for INT4).

    >>> q = QuantizationPanel(); q.precision.value = "int8-static"; q.settings()["calibration"]
    'minmax'
    """

    def __init__(self, precision: str = "fp32"):
        self.precision = w.SelectionSlider(
            options=[(PRECISION_LABELS[p], p) for p in PRECISIONS],
            value=precision,
            description="Precision",
            continuous_update=False,
            style={"description_width": "80px"},
            layout=w.Layout(width="470px"),
        )
        self.step_help = w.HTML()
        self.precision.tooltip = "Slide right for a smaller, usually faster model; watch what happens to accuracy."
        self.per_channel = w.Checkbox(value=True, description="Per-channel scales", style=LABEL_STYLE)
        self.calibration = w.Dropdown(
            options=list(CALIBRATIONS), value="minmax", description="Calibration", style=LABEL_STYLE
        )
        self.samples = w.IntSlider(
            value=64,
            min=8,
            max=512,
            step=8,
            description="Calib. samples",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        self.block_size = w.Dropdown(options=list(BLOCK_SIZES), value=32, description="Block size", style=LABEL_STYLE)
        # the target format: the edge formats write a program for a phone's / a Raspberry Pi's runtime
        self.format = w.Dropdown(
            options=[(FORMAT_LABELS[f], f) for f in FORMATS], value="onnx", description="Format", style=LABEL_STYLE
        )
        self.format_help = w.HTML()
        self._per_channel_box = with_help(
            self.per_channel,
            "One scale per output channel instead of one per "
            "tensor: a little bigger, usually clearly more accurate. Keep it on.",
        )
        self._calibration_box = with_help(
            self.calibration,
            "How activation ranges are measured: minmax is fast "
            "but outliers stretch it; entropy and percentile clip long tails.",
        )
        self._samples_box = with_help(
            self.samples,
            "Calibration examples (never the test set). 64 is usually enough; more takes longer and rarely helps.",
        )
        self._block_box = with_help(
            self.block_size, "Weights share one scale per block: smaller blocks are more accurate and a little bigger."
        )
        super().__init__(
            [
                section_title("Quantization"),
                self.format,
                self.format_help,
                self.precision,
                self.step_help,
                self._per_channel_box,
                self._calibration_box,
                self._samples_box,
                self._block_box,
            ]
        )
        self.precision.observe(self._sync, names="value")
        self.format.observe(self._sync, names="value")
        self._sync()

    def _sync(self, _change: Any = None) -> None:
        p, fmt = self.precision.value, self.format.value
        # the slider's readout is narrow: say the chosen step in full here, with what it means
        here = precision_note(p)  # what this CPU makes of it ("slower than FP32 here: no avx512_bf16 ...")
        self.step_help.value = help_line(
            f"{PRECISION_LABELS[p]}: {PRECISION_HELP[p]}" + (f" On this CPU: {here}." if here else "")
        ).value
        note = FORMAT_HELP[fmt]
        if fmt != "onnx" and p not in EDGE_PRECISIONS[fmt]:
            note = f"{fmt} has no {PRECISION_LABELS[p]}: choose {' or '.join(PRECISION_LABELS[x] for x in EDGE_PRECISIONS[fmt])}"
        self.format_help.value = help_line(f"{FORMAT_LABELS[fmt]}: {note}").value
        show = {
            self._per_channel_box: p.startswith("int8"),
            self._calibration_box: p == "int8-static" and fmt == "onnx",  # the edge quantizers calibrate min/max
            self._samples_box: p == "int8-static",
            self._block_box: p == "int4",
        }
        for box, visible in show.items():
            box.layout.display = "flex" if visible else "none"

    def settings(self) -> dict[str, Any]:
        """Keyword arguments for ``workbench.compose.build_recipe``."""
        return {
            "precision": self.precision.value,
            "per_channel": self.per_channel.value,
            "calibration": self.calibration.value,
            "samples": self.samples.value,
            "block_size": self.block_size.value,
            "format": self.format.value,
        }

    @property
    def controls(self) -> list[w.Widget]:
        return [self.format, self.precision, self.per_channel, self.calibration, self.samples, self.block_size]


class _OptionalPassPanel(w.VBox):
    """A panel for a pass that may not exist in this version: disabled, with a note, until it does."""

    kinds: tuple[str, ...] = ()
    label = ""

    def __init__(self, children: list[w.Widget], enable_help: str):
        self.available = all(optional_pass(k) is not None for k in self.kinds) if self.kinds else False
        self.enabled = w.Checkbox(value=False, description=f"Use {self.label.lower()}", style=LABEL_STYLE)
        self.note = Message()
        if not self.available:
            self.note.show(f"{self.label} is not available in this version of the workbench.", "warn")
        body = [section_title(self.label), with_help(self.enabled, enable_help), *children, self.note]
        super().__init__(body)
        for c in self.controls:
            c.disabled = not self.available
        self.enabled.observe(self._sync, names="value")
        self._sync()

    @property
    def controls(self) -> list[w.Widget]:
        return [self.enabled]

    def _sync(self, _change: Any = None) -> None:
        for c in self.controls[1:]:
            c.disabled = not (self.available and self.enabled.value)


class PruningPanel(_OptionalPassPanel):
    """Sparsity 0–95 %, unstructured (single weights) or structured (whole channels/heads), fine-tune steps."""

    kinds = ("magnitude-prune", "structured-prune")
    label = "Pruning"

    def __init__(self) -> None:
        self.sparsity = w.IntSlider(
            value=50,
            min=0,
            max=95,
            step=5,
            description="Sparsity (%)",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        self.method = w.ToggleButtons(
            options=[("unstructured", "unstructured"), ("structured", "structured")],
            value="unstructured",
            description="Method",
            style=LABEL_STYLE,
        )
        self.scope = w.ToggleButtons(
            options=[("whole model", "global"), ("each layer", "layer")],
            value="global",
            description="Rank weights",
            style=LABEL_STYLE,
        )
        self.finetune_steps = w.IntSlider(
            value=0,
            min=0,
            max=500,
            step=10,
            description="Fine-tune steps",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        self._scope_box = with_help(
            self.scope,
            "Unstructured only: rank all weights together (layers full of "
            "small weights lose more) or prune every layer by the same share.",
        )
        super().__init__(
            [
                with_help(
                    self.sparsity,
                    "Share of weights set to zero. Up to ~50 % is often harmless; 90 % usually needs fine-tuning.",
                ),
                with_help(
                    self.method,
                    "Unstructured zeroes single weights (smaller when compressed, not faster by "
                    "itself); structured removes whole channels or heads (really faster).",
                ),
                self._scope_box,
                with_help(self.finetune_steps, "Training steps after pruning to win accuracy back (0 = none)."),
            ],
            "Remove the least important weights before quantizing.",
        )
        self.method.observe(self._sync_scope, names="value")

    @property
    def controls(self) -> list[w.Widget]:
        return [self.enabled, self.sparsity, self.method, self.scope, self.finetune_steps]

    def _sync_scope(self, _change: Any = None) -> None:
        self._scope_box.layout.display = "flex" if self.method.value == "unstructured" else "none"

    def settings(self) -> dict[str, Any] | None:
        """The ``prune=`` argument of ``build_recipe`` (None when off)."""
        if not (self.enabled.value and self.available):
            return None
        out = {
            "method": self.method.value,
            "sparsity": self.sparsity.value / 100,
            "finetune_steps": self.finetune_steps.value,
        }
        if self.method.value == "unstructured":
            out["scope"] = self.scope.value
        return out


class DistillationPanel(_OptionalPassPanel):
    """Train a smaller student (fewer layers) to imitate the model: student size and loss weights."""

    kinds = ("distill",)
    label = "Distillation"

    def __init__(self) -> None:
        self.student_layers = w.Dropdown(
            options=[("auto (half)", None), *[(str(n), n) for n in range(1, 13)]],
            value=None,
            description="Student layers",
            style=LABEL_STYLE,
        )
        self.width = w.Dropdown(
            options=[("auto", None), ("25 %", 0.25), ("50 %", 0.5), ("75 %", 0.75), ("100 %", 1.0)],
            value=None,
            description="Student width",
            style=LABEL_STYLE,
        )
        self.temperature = w.FloatSlider(
            value=2.0,
            min=1.0,
            max=8.0,
            step=0.5,
            description="Temperature",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        self.alpha = w.FloatSlider(
            value=0.5,
            min=0.0,
            max=1.0,
            step=0.05,
            description="Alpha (soft loss)",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        self.hidden_weight = w.FloatSlider(
            value=1.0,
            min=0.0,
            max=2.0,
            step=0.1,
            description="Hidden weight",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        self.steps = w.IntSlider(
            value=480,
            min=10,
            max=2000,
            step=10,
            description="Training steps",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=WIDE,
        )
        super().__init__(
            [
                with_help(
                    self.student_layers,
                    "Transformer layers the student keeps: fewer = faster and smaller. Auto keeps half.",
                ),
                with_help(
                    self.width,
                    "Share of neurons / channels the student keeps. Auto: all for transformers "
                    "(depth is the cheap cut there), half for CNNs.",
                ),
                with_help(
                    self.temperature,
                    "Softens the teacher's answers so the student also learns its 'second guesses'. 2 is a good start.",
                ),
                with_help(self.alpha, "Weight of imitating the teacher vs. learning the labels (1 = only imitate)."),
                with_help(self.hidden_weight, "Weight of matching the teacher's hidden states too (0 = off)."),
                with_help(
                    self.steps,
                    "Training steps for the student: more is better and slower (480 takes minutes "
                    "for MiniLM, seconds for digits-cnn).",
                ),
            ],
            "Train a smaller student model to imitate this one.",
        )

    @property
    def controls(self) -> list[w.Widget]:
        return [
            self.enabled,
            self.student_layers,
            self.width,
            self.temperature,
            self.alpha,
            self.hidden_weight,
            self.steps,
        ]

    def settings(self) -> dict[str, Any] | None:
        """The ``distill=`` argument of ``build_recipe`` (None when off)."""
        if not (self.enabled.value and self.available):
            return None
        return {
            "student_layers": self.student_layers.value,
            "width": self.width.value,
            "temperature": self.temperature.value,
            "alpha": self.alpha.value,
            "hidden_weight": self.hidden_weight.value,
            "steps": self.steps.value,
        }
