"""Pruning: unstructured magnitude pruning (smaller when zipped) and structured pruning (smaller AND faster).

Unstructured pruning zeroes individual weights. Dense kernels (MKL, ONNX Runtime's MLAS) multiply
zeros as fast as any other number, so latency does not change; the gain is a file that compresses
well. The pass records that plainly, with the zipped size before and after.

Structured pruning removes whole units, so every matrix gets physically smaller:
- transformers (BERT-like encoders): attention heads and FFN neurons, per layer, least important first;
- CNNs / MLPs built from Conv1d / Conv2d / Linear layers: output channels / hidden units, with the matching
  inputs of the next layer (BatchNorm and depthwise convolutions in between follow).
Importance is first-order Taylor (|weight x gradient| of the task loss, summed over a unit) or the L1
norm of the unit's weights. A short fine-tuning against the unpruned model recovers accuracy.

>>> from workbench.passes import StructuredPrune
>>> StructuredPrune(sparsity=0.5, finetune_steps=100).kind
'structured-prune'
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.artifact import Artifact, torch_artifact
from ..core.config import PassConfig, check_choice, check_range
from ..core.errors import ConfigError
from .registry import PassJob, register_pass
from .surgery import attention_shape, param_count, shrink_width
from .training import default_lr, train_student

__all__ = ["MagnitudePrune", "StructuredPrune", "zipped_size", "weight_sparsity"]


def _check_common(owner: str, cfg: Any) -> None:
    check_range(owner, "sparsity", cfg.sparsity, 0, 0.95)
    check_range(owner, "finetune_steps", cfg.finetune_steps, 0, 1_000_000, integer=True)
    check_range(owner, "batch_size", cfg.batch_size, 1, 4096, integer=True)
    if cfg.lr is not None:
        check_range(owner, "lr", cfg.lr, 0, 1, lo_open=True)
    check_range(owner, "seed", cfg.seed, 0, 2**31 - 1, integer=True)
    check_range(owner, "max_seconds", cfg.max_seconds, 0, 86_400, lo_open=True)


@dataclass(frozen=True)
class MagnitudePrune(PassConfig):
    """Zero the smallest-magnitude weights of Linear/Conv layers (L1, per layer or global)."""

    kind: ClassVar[str] = "magnitude-prune"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "torch"
    needs_float_weights: ClassVar[bool] = True
    summary: ClassVar[str] = "zero the smallest weights: smaller zipped, NOT faster on dense kernels"

    #: fraction of Linear/Conv weights set to zero
    sparsity: float = 0.5
    #: "global" ranks all weights together (layers with many small weights lose more); "layer" prunes each equally
    scope: str = "global"
    #: "oneshot" prunes once, then fine-tunes; "gradual" raises sparsity along a cubic curve while fine-tuning
    #: (Zhu & Gupta 2017), which keeps more accuracy at high sparsity
    schedule: str = "oneshot"
    #: fine-tuning steps with the unpruned model as teacher; masks are re-applied after every step
    finetune_steps: int = 0
    #: gradual schedule: masks are recomputed every this many steps
    update_every: int = 10
    batch_size: int = 16
    lr: float | None = None
    seed: int = 0
    max_seconds: float = 600.0

    def validate(self) -> None:
        _check_common("MagnitudePrune", self)
        check_choice("MagnitudePrune", "scope", self.scope, ("global", "layer"))
        check_choice("MagnitudePrune", "schedule", self.schedule, ("oneshot", "gradual"))
        check_range("MagnitudePrune", "update_every", self.update_every, 1, 100_000, integer=True)
        if self.schedule == "gradual" and self.finetune_steps < 1:
            raise ConfigError(
                f"MagnitudePrune: schedule='gradual' raises sparsity during fine-tuning, so "
                f"'finetune_steps' must be an int >= 1. Got {self.finetune_steps!r} instead."
            )

    @classmethod
    def example(cls) -> MagnitudePrune:
        return cls(sparsity=0.5, scope="layer", finetune_steps=10, batch_size=32)


@dataclass(frozen=True)
class StructuredPrune(PassConfig):
    """Remove the least important heads / FFN neurons / channels / hidden units, then fine-tune."""

    kind: ClassVar[str] = "structured-prune"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "torch"
    needs_float_weights: ClassVar[bool] = True
    summary: ClassVar[str] = "physically remove heads / FFN neurons / channels: smaller and faster"

    #: fraction of units removed in every prunable layer
    sparsity: float = 0.5
    #: what a transformer loses: attention heads and/or FFN neurons (CNNs lose channels / hidden units)
    targets: tuple[str, ...] = ("heads", "ffn")
    #: "taylor" = |w * grad| of the task loss (needs labelled train data); "l1" = weight norm, data-free
    importance: str = "taylor"
    importance_batches: int = 8
    #: fine-tuning steps against the unpruned model (logits + hidden states); 0 = prune only
    finetune_steps: int = 200
    batch_size: int = 16
    lr: float | None = None
    seed: int = 0
    max_seconds: float = 600.0

    def validate(self) -> None:
        _check_common("StructuredPrune", self)
        if not self.targets or any(t not in ("heads", "ffn") for t in self.targets):
            raise ConfigError.out_of_range(
                "StructuredPrune", "targets", self.targets, "a non-empty tuple of 'heads', 'ffn'"
            )
        check_choice("StructuredPrune", "importance", self.importance, ("taylor", "l1"))
        check_range("StructuredPrune", "importance_batches", self.importance_batches, 1, 10_000, integer=True)

    @classmethod
    def example(cls) -> StructuredPrune:
        return cls(sparsity=0.5, finetune_steps=30, batch_size=32, importance_batches=2)


# ---- measurements ------------------------------------------------------------------------------
def _prunable_weights(module) -> list[tuple[str, Any]]:
    import torch

    return [
        (n, m.weight)
        for n, m in module.named_modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))
    ]


def weight_sparsity(module) -> float:
    """Fraction of zeros among the Linear/Conv weights."""
    ws = [w for _, w in _prunable_weights(module)]
    total = sum(w.numel() for w in ws)
    return float(sum(int((w == 0).sum()) for w in ws) / max(total, 1))


def zipped_size(module) -> int:
    """Bytes of the float32 weights after zlib (what a zipped download of the model costs)."""
    z = zlib.compressobj(6)
    n = 0
    for _, t in sorted(module.state_dict().items()):
        n += len(z.compress(t.detach().float().contiguous().numpy().tobytes()))
    return n + len(z.flush())


def _nonzero(module) -> int:
    return int(sum(int((p != 0).sum()) for p in module.parameters()))


# ---- magnitude pruning ---------------------------------------------------------------------------
def _magnitude_masks(module, sparsity: float, scope: str) -> dict[str, Any]:
    import torch

    ws = _prunable_weights(module)
    masks = {}
    if scope == "global":
        allw = torch.cat([w.detach().abs().flatten() for _, w in ws])
        k = int(round(sparsity * allw.numel()))
        thr = torch.kthvalue(allw, k).values if k > 0 else torch.tensor(-1.0)
        for n, w in ws:
            masks[n] = (w.detach().abs() > thr).float()
    else:
        for n, w in ws:
            a = w.detach().abs().flatten()
            k = int(round(sparsity * a.numel()))
            thr = torch.kthvalue(a, k).values if k > 0 else torch.tensor(-1.0)
            masks[n] = (w.detach().abs() > thr).float()
    return masks


def _apply_masks(module, masks: dict[str, Any]) -> None:
    import torch

    mods = dict(module.named_modules())
    with torch.no_grad():
        for n, m in masks.items():
            mods[n].weight.mul_(m)


@register_pass(MagnitudePrune)
def _magnitude(art: Artifact, cfg: MagnitudePrune, job: PassJob) -> Artifact:
    stage = job.stage or "magnitude-prune"
    module = copy.deepcopy(art.module)
    if not _prunable_weights(module):
        raise ConfigError(
            f"magnitude-prune found no Linear/Conv weights in {job.model.name!r} "
            f"({type(module).__name__}): nothing to prune."
        )
    facts: dict[str, Any] = {
        "sparsity_target": cfg.sparsity,
        "scope": cfg.scope,
        "schedule": cfg.schedule,
        "zipped_bytes_before": zipped_size(module),
        "nonzero_params_before": _nonzero(module),
    }
    teacher = art.module
    if cfg.schedule == "oneshot" or cfg.finetune_steps == 0:
        job.ctx.begin(stage, total=1, message="ranking weights")
        masks = _magnitude_masks(module, cfg.sparsity, cfg.scope)
        _apply_masks(module, masks)
        job.ctx.step(message=f"sparsity {weight_sparsity(module):.3f}")
        if cfg.finetune_steps:
            facts["finetune"] = train_student(
                module,
                teacher,
                job,
                steps=cfg.finetune_steps,
                batch_size=cfg.batch_size,
                lr=cfg.lr or default_lr(module) / 2,
                seed=cfg.seed,
                max_seconds=cfg.max_seconds,
                after_step=lambda _i: _apply_masks(module, masks),
                stage=f"{stage} / fine-tune",
            )
    else:
        # cubic schedule: sparsity s_t = s * (1 - (1 - t / T)^3), reaching s at 3/4 of the steps
        ramp = max(1, int(0.75 * cfg.finetune_steps))
        state = {"masks": _magnitude_masks(module, 0.0, cfg.scope)}

        def after(i: int) -> None:
            if i % cfg.update_every == 0 or i + 1 == ramp:
                s = cfg.sparsity * (1 - (1 - min(i + 1, ramp) / ramp) ** 3)
                state["masks"] = _magnitude_masks(module, s, cfg.scope)
            _apply_masks(module, state["masks"])

        facts["finetune"] = train_student(
            module,
            teacher,
            job,
            steps=cfg.finetune_steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr or default_lr(module) / 2,
            seed=cfg.seed,
            max_seconds=cfg.max_seconds,
            after_step=after,
            stage=f"{stage} / fine-tune",
        )
        # a time budget may stop the ramp early: finish at the target sparsity either way
        _apply_masks(module, _magnitude_masks(module, cfg.sparsity, cfg.scope))
    reached = weight_sparsity(module)
    facts.update(
        sparsity_reached=reached,
        nonzero_params_after=_nonzero(module),
        zipped_bytes_after=zipped_size(module),
        latency_changed=False,
        latency_note=(
            "unstructured zeros keep every matrix dense: PyTorch and ONNX Runtime CPU kernels "
            "multiply them anyway, so latency does not change; the gain is the zipped size. "
            "Use structured-prune for speed."
        ),
    )
    return torch_artifact(
        module, art.input_names, **{**art.meta, "sparsity": reached, "pruning": facts, "latency_changed": False}
    )


@register_pass(StructuredPrune)
def _structured(art: Artifact, cfg: StructuredPrune, job: PassJob) -> Artifact:
    stage = job.stage or "structured-prune"
    module = copy.deepcopy(art.module)
    job.ctx.begin(stage, total=1, message=f"ranking units ({cfg.importance})")
    before = param_count(module)
    importance = cfg.importance
    if importance == "taylor" and (job.model.data.train is None or job.model.data.train.labels is None):
        importance = "l1"  # no labelled data to take gradients on: rank by weight norm instead
    kept = shrink_width(
        module,
        job,
        cfg.sparsity,
        importance=importance,
        targets=cfg.targets,
        batches=cfg.importance_batches,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        stage=stage,
    )
    after = param_count(module)
    facts: dict[str, Any] = {
        "sparsity": cfg.sparsity,
        "importance": importance,
        "params_before": before,
        "params_after": after,
        "params_removed_fraction": 1 - after / before,
    }
    facts.update(getattr(module, "_wb_prune_facts", {}))
    if hasattr(module, "_wb_prune_facts"):
        del module._wb_prune_facts
    if kept:
        facts["units"] = {n: int(len(k)) for n, k in kept.items()}
    job.ctx.step(message=f"params {before} -> {after}")
    if cfg.finetune_steps:
        facts["finetune"] = train_student(
            module,
            art.module,
            job,
            steps=cfg.finetune_steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr or default_lr(module),
            seed=cfg.seed,
            max_seconds=cfg.max_seconds,
            hidden_weight=1.0,
            kept=kept,
            stage=f"{stage} / fine-tune",
        )
    meta = {**art.meta, "structured_pruning": facts, "params_before": before, "params_after": after}
    if "heads_per_layer" in facts:  # ONNX Runtime's attention fusion needs the head count and width
        meta.update(attention_shape(module))
    return torch_artifact(module, art.input_names, **meta)
