"""Knowledge distillation: the FP32 model teaches a smaller student initialised from its own weights.

The student keeps a subset of the teacher's transformer layers (evenly spread, first and last kept)
and/or a fraction of its FFN neurons / conv channels (the most important ones, see ``prune.py``).
It learns from a temperature-scaled logit loss (Hinton et al.), the hard labels, and a hidden-state
loss that pulls each student layer towards the teacher layer it was copied from.

For ``minilm`` the logits are those of the task's frozen linear head on the sentence embedding:
the student is trained for exactly the classifier that scores it. The same training loop fine-tunes
pruned models (``prune.py``) and fake-quantized ones (``qat.py``).

>>> from workbench.passes import Distill
>>> Distill(student_layers=3, steps=300).kind
'distill'
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.artifact import Artifact, torch_artifact
from ..core.config import PassConfig, check_range
from ..core.errors import ConfigError
from .registry import PassJob, register_pass
from .surgery import attention_shape, drop_blocks, drop_layers, param_count, shrink_width, spread
from .training import default_lr, encoder_layers, is_encoder, train_student

__all__ = ["Distill"]


@dataclass(frozen=True)
class Distill(PassConfig):
    """Train a smaller student (fewer layers and/or narrower) from the FP32 teacher."""

    kind: ClassVar[str] = "distill"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "torch"
    needs_float_weights: ClassVar[bool] = True
    summary: ClassVar[str] = "fewer layers / narrower model trained to mimic the FP32 teacher (logits + hidden states)"

    #: transformer layers the student keeps; None = half the input's layers (3 of MiniLM's 6)
    student_layers: int | None = None
    #: fraction of FFN neurons (transformers) or conv channels / hidden units (CNNs) kept;
    #: None = 1.0 for transformers (depth is the cheap cut there) and 0.5 for CNNs
    width: float | None = None
    #: fraction of attention heads each transformer layer keeps (the most important, L1 of their weights);
    #: None = all of them
    heads: float | None = None
    #: CNNs: convolutions removed whose output has the shape of their input (the deepest first, with their
    #: BatchNorm); 0 keeps the depth
    drop_blocks: int = 0
    #: softens both distributions so the student also learns the teacher's "dark knowledge"
    temperature: float = 2.0
    #: weight of the teacher-logit loss; 1 - alpha goes to the hard labels
    alpha: float = 0.5
    #: weight of the hidden-state loss (per-layer relative MSE + embedding cosine for encoders)
    hidden_weight: float = 1.0
    #: 480 steps of 16 = 5 epochs of BBC's 1558 training articles: ~7 min for MiniLM -> 3 layers on 2 cores
    steps: int = 480
    batch_size: int = 16
    #: None = 2e-4 for transformers, 1e-3 for small CNNs (Adam)
    lr: float | None = None
    seed: int = 0
    #: training stops at this wall-clock budget even if steps remain (recorded in the artifact meta)
    max_seconds: float = 540.0

    def validate(self) -> None:
        if self.student_layers is not None:
            check_range("Distill", "student_layers", self.student_layers, 1, 48, integer=True)
        if self.width is not None:
            check_range("Distill", "width", self.width, 0.05, 1.0, lo_open=False)
        if self.heads is not None:
            check_range("Distill", "heads", self.heads, 0.05, 1.0, lo_open=False)
        check_range("Distill", "drop_blocks", self.drop_blocks, 0, 64, integer=True)
        check_range("Distill", "temperature", self.temperature, 0.5, 20)
        check_range("Distill", "alpha", self.alpha, 0, 1)
        check_range("Distill", "hidden_weight", self.hidden_weight, 0, 100)
        check_range("Distill", "steps", self.steps, 0, 1_000_000, integer=True)
        check_range("Distill", "batch_size", self.batch_size, 1, 4096, integer=True)
        if self.lr is not None:
            check_range("Distill", "lr", self.lr, 0, 1, lo_open=True)
        check_range("Distill", "seed", self.seed, 0, 2**31 - 1, integer=True)
        check_range("Distill", "max_seconds", self.max_seconds, 0, 86_400, lo_open=True)

    @classmethod
    def example(cls) -> Distill:
        """A fast config for the contract suite: a half-width digits-cnn student, 30 steps."""
        return cls(width=0.5, steps=30, batch_size=32, seed=0)


@register_pass(Distill)
def _distill(art: Artifact, cfg: Distill, job: PassJob) -> Artifact:

    base = job.model.baseline
    teacher = base.module if base.kind == "torch" and base.module is not None else art.module
    student = copy.deepcopy(art.module)  # never touch the caller's module
    facts: dict[str, Any] = {"params_teacher": param_count(teacher), "params_before": param_count(student)}
    layer_map = None
    kept: dict[str, Any] = {}
    if is_encoder(student):
        n_in = len(encoder_layers(student))
        n_teacher = len(encoder_layers(teacher)) if is_encoder(teacher) else n_in
        n_out = cfg.student_layers if cfg.student_layers is not None else max(1, math.ceil(n_in / 2))
        if n_out > n_in:
            raise ConfigError.out_of_range(
                "Distill",
                "student_layers",
                n_out,
                f"an int in [1, {n_in}]: a student cannot be larger than its teacher ({job.model.name!r} "
                f"has {n_in} layers here)",
            )
        keep = spread(n_in, n_out)
        drop_layers(student, keep)
        # student layer i was copied from input layer keep[i]; when the input already lost layers
        # (a second distillation) it is matched to the teacher layer at the same relative depth
        layer_map = [round((k + 1) * n_teacher / n_in) for k in keep]
        width = 1.0 if cfg.width is None else cfg.width
        facts.update(layers_kept=keep, student_layers=n_out, teacher_layers=n_teacher)
        if cfg.drop_blocks:
            raise ConfigError(
                f"The 'drop_blocks' parameter of Distill applies to CNNs; {job.model.name!r} is a transformer "
                f"encoder, whose depth is set with 'student_layers' (an int in [1, {n_in}]). Got "
                f"{cfg.drop_blocks!r} instead."
            )
        if cfg.heads is not None and cfg.heads < 1.0:
            shrink_width(
                student, job, 1.0 - cfg.heads, importance="l1", targets=("heads",), stage=job.stage or "distill"
            )
            facts["heads_per_layer"] = student._wb_prune_facts["heads_per_layer"]
            del student._wb_prune_facts
    else:
        if cfg.heads is not None:
            raise ConfigError(
                f"The 'heads' parameter of Distill applies to transformer encoders; {job.model.name!r} "
                f"({type(student).__name__}) has no attention heads. Set heads=None. Got {cfg.heads!r} instead."
            )
        if cfg.drop_blocks:
            facts["blocks_removed"] = drop_blocks(student, job, cfg.drop_blocks)
        if cfg.student_layers is not None:
            raise ConfigError(
                f"The 'student_layers' parameter of Distill applies to transformer encoders; "
                f"{job.model.name!r} ({type(student).__name__}) has no layer stack. Set student_layers=None "
                f"and shrink it with 'width' (a float in [0.05, 1]). Got {cfg.student_layers!r} instead."
            )
        width = 0.5 if cfg.width is None else cfg.width
    if width < 1.0:
        kept = shrink_width(student, job, 1.0 - width, importance="l1", stage=job.stage or "distill")
        if hasattr(student, "_wb_prune_facts"):
            del student._wb_prune_facts
    facts["width"] = width
    facts["params_after"] = param_count(student)
    lr = cfg.lr if cfg.lr is not None else default_lr(student)
    facts.update(
        train_student(
            student,
            teacher,
            job,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=lr,
            seed=cfg.seed,
            max_seconds=cfg.max_seconds,
            temperature=cfg.temperature,
            alpha=cfg.alpha,
            hidden_weight=cfg.hidden_weight,
            layer_map=layer_map,
            kept=kept,
            stage=job.stage or "distill",
        )
    )
    meta = dict(art.meta)
    if is_encoder(student):  # ONNX Runtime's attention fusion is told the heads the student kept
        meta.update(attention_shape(student))
    return torch_artifact(
        student,
        art.input_names,
        **{
            **meta,
            "distilled": facts,
            "params_before": facts["params_before"],
            "params_after": facts["params_after"],
        },
    )
