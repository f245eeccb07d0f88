"""Pruning: unstructured magnitude pruning (smaller when zipped) and structured pruning (smaller AND faster).

Unstructured pruning zeroes individual weights. Dense kernels (MKL, ONNX Runtime's MLAS) multiply
zeros as fast as any other number, so latency does not change; the gain is a file that compresses
well. The pass records that plainly, with the zipped size before and after.

Structured pruning removes whole units, so every matrix gets physically smaller:
- transformers (BERT-like encoders): attention heads and FFN neurons, per layer, least important first;
- CNNs / MLPs built from Conv2d / Linear layers: output channels / hidden units, with the matching
  inputs of the next layer (BatchNorm in between follows).
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

import numpy as np

from ..artifact import Artifact, torch_artifact
from ..config import PassConfig, check_choice, check_range
from ..errors import ConfigError
from .distill import default_lr, encoder_layers, is_encoder, train_student
from .registry import PassJob, register_pass

__all__ = ["MagnitudePrune", "StructuredPrune", "shrink_width", "prunable_chain", "zipped_size", "weight_sparsity"]


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


# ---- structured pruning: CNNs and MLPs -------------------------------------------------------------
def _pass_through():
    import torch.nn as nn

    return (
        nn.ReLU,
        nn.ReLU6,
        nn.GELU,
        nn.SiLU,
        nn.Tanh,
        nn.Sigmoid,
        nn.LeakyReLU,
        nn.ELU,
        nn.Hardswish,
        nn.Dropout,
        nn.Identity,
        nn.MaxPool2d,
        nn.AvgPool2d,
        nn.AdaptiveAvgPool2d,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.Flatten,
    )


def prunable_chain(module, sample: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Producer/consumer pairs whose shared units can be removed: ``[{producer, between, consumer, spatial}]``.

    The data flow is traced with forward hooks on one real input: a pair only counts when the
    consumer reads exactly the tensor the producer (through channel-wise layers) wrote, so models
    whose forward does something else in between are left alone rather than broken.
    """
    import torch
    import torch.nn as nn

    records: list[tuple[str, Any, int, int, Any]] = []
    keep_alive: list[Any] = []
    leaves = [(n, m) for n, m in module.named_modules() if n and not list(m.children())]

    def hook(name):
        def fn(m, inp, out):
            x = inp[0] if inp else None
            keep_alive.extend([x, out])
            records.append((name, m, id(x), id(out), x.shape if x is not None else None))

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    try:
        with torch.no_grad():
            module.eval()
            module(*[torch.from_numpy(np.ascontiguousarray(v[:2])) for v in sample.values()])
    finally:
        for h in handles:
            h.remove()
    passthrough = _pass_through()
    pairs = []
    for i, (name, m, _, out_id, _) in enumerate(records):
        if not (isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)):
            continue
        between, cur, j = [], out_id, i + 1
        while j < len(records) and records[j][2] == cur and isinstance(records[j][1], passthrough):
            between.append(records[j][:2])
            cur = records[j][3]
            j += 1
        if j >= len(records) or records[j][2] != cur:
            continue
        cname, c = records[j][0], records[j][1]
        units = m.out_features if isinstance(m, nn.Linear) else m.out_channels
        if isinstance(c, nn.Linear) and c.in_features % units == 0:
            spatial = c.in_features // units
        elif isinstance(c, nn.Conv2d) and c.groups == 1 and c.in_channels == units:
            spatial = 1
        else:
            continue
        if spatial > 1 and not any(isinstance(b, nn.Flatten) for _, b in between):
            continue
        pairs.append({"producer": (name, m), "between": between, "consumer": (cname, c), "spatial": spatial})
    return pairs


def _cols(idx, spatial: int):
    import torch

    if spatial == 1:
        return idx
    return (idx[:, None] * spatial + torch.arange(spatial)[None, :]).flatten()


def _chain_scores(pair: dict, grads: dict | None) -> Any:
    """Importance of each producer unit: L1 norm (grads None) or Taylor |w * g| over its weights."""
    import torch

    _, p = pair["producer"]
    _, c = pair["consumer"]
    units = p.weight.shape[0]

    def term(t, g):
        return (t.detach() * g).abs() if g is not None else t.detach().abs()

    s = term(p.weight, grads and grads.get(id(p.weight))).reshape(units, -1).sum(1)
    if p.bias is not None:
        s = s + term(p.bias, grads and grads.get(id(p.bias)))
    cw = term(c.weight, grads and grads.get(id(c.weight)))
    cw = (
        cw.reshape(cw.shape[0], units, -1) if pair["spatial"] > 1 or cw.dim() > 2 else cw.reshape(cw.shape[0], units, 1)
    )
    return s + torch.as_tensor(cw.sum((0, 2)))


def _prune_pair(pair: dict, keep) -> None:
    import torch
    import torch.nn as nn

    _, p = pair["producer"]
    _, c = pair["consumer"]
    with torch.no_grad():
        p.weight = nn.Parameter(p.weight[keep].clone())
        if p.bias is not None:
            p.bias = nn.Parameter(p.bias[keep].clone())
        if isinstance(p, nn.Linear):
            p.out_features = len(keep)
        else:
            p.out_channels = len(keep)
        for _, b in pair["between"]:
            if isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d)):
                b.weight = nn.Parameter(b.weight[keep].clone())
                b.bias = nn.Parameter(b.bias[keep].clone())
                b.running_mean = b.running_mean[keep].clone()
                b.running_var = b.running_var[keep].clone()
                b.num_features = len(keep)
        cols = _cols(keep, pair["spatial"])
        c.weight = nn.Parameter(c.weight[:, cols].clone())
        if isinstance(c, nn.Linear):
            c.in_features = len(cols)
        else:
            c.in_channels = len(keep)


# ---- structured pruning: transformers ----------------------------------------------------------------
def _head_scores(layer, grads: dict | None, n_heads: int):
    att = layer.attention
    d = att.self.attention_head_size

    def term(t):
        g = grads and grads.get(id(t))
        return (t.detach() * g).abs() if g is not None else t.detach().abs()

    s = 0
    for lin in (att.self.query, att.self.key, att.self.value):
        s = s + term(lin.weight).reshape(n_heads, d, -1).sum((1, 2)) + term(lin.bias).reshape(n_heads, d).sum(1)
    return s + term(att.output.dense.weight).reshape(-1, n_heads, d).sum((0, 2))


def _ffn_scores(layer, grads: dict | None):
    def term(t):
        g = grads and grads.get(id(t))
        return (t.detach() * g).abs() if g is not None else t.detach().abs()

    inter, out = layer.intermediate.dense, layer.output.dense
    return term(inter.weight).sum(1) + term(inter.bias) + term(out.weight).sum(0)


def _keep_top(scores, fraction: float):
    import torch

    n = len(scores)
    n_keep = max(1, n - int(round(fraction * n)))
    return torch.sort(torch.topk(scores, n_keep).indices).values


def _taylor_grads(module, job: PassJob, batches: int, batch_size: int, seed: int) -> dict | None:
    """Accumulated |gradient| of the task loss per parameter (keyed by id(param)); None without labels."""
    import torch

    train = job.model.data.train
    if train is None or train.labels is None or len(train) == 0:
        return None
    rng = np.random.default_rng(seed)
    names = job.model.baseline.input_names
    head = getattr(job.model.task, "head", None)
    module.eval()  # no dropout noise in the ranking
    module.zero_grad(set_to_none=True)
    for _ in range(batches):
        job.ctx.check()
        idx = rng.choice(len(train), size=min(batch_size, len(train)), replace=False)
        args = [torch.from_numpy(np.ascontiguousarray(train.inputs[n][idx])) for n in names]
        out = module(*args)
        if head is not None:
            out = out @ torch.from_numpy(np.asarray(head.weight)).T + torch.from_numpy(np.asarray(head.bias))
        torch.nn.functional.cross_entropy(out, torch.from_numpy(train.labels[idx])).backward()
    grads = {id(p): p.grad.detach().clone() for p in module.parameters() if p.grad is not None}
    module.zero_grad(set_to_none=True)
    return grads


def _prune_encoder(module, fraction: float, targets: tuple[str, ...], grads: dict | None) -> dict[str, Any]:
    from transformers.pytorch_utils import prune_linear_layer

    enc = module.encoder
    total_heads = enc.config.num_attention_heads
    facts: dict[str, Any] = {"heads_before": 0, "heads_after": 0, "ffn_before": 0, "ffn_after": 0}
    to_prune: dict[int, list[int]] = {}
    for li, layer in enumerate(encoder_layers(module)):
        if "heads" in targets:
            n = layer.attention.self.num_attention_heads
            keep = _keep_top(_head_scores(layer, grads, n), fraction).tolist()
            # prune_heads speaks in the original head numbering: map current positions back
            orig = [h for h in range(total_heads) if h not in layer.attention.pruned_heads]
            drop = [orig[h] for h in range(n) if h not in keep]
            if drop:
                to_prune[li] = drop
            facts["heads_before"] += n
            facts["heads_after"] += len(keep)
        if "ffn" in targets:
            scores = _ffn_scores(layer, grads)
            keep_t = _keep_top(scores, fraction)
            facts["ffn_before"] += len(scores)
            facts["ffn_after"] += len(keep_t)
            layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, keep_t, dim=0)
            layer.output.dense = prune_linear_layer(layer.output.dense, keep_t, dim=1)
    if to_prune:
        enc.prune_heads(to_prune)
    heads_per_layer = sorted({layer.attention.self.num_attention_heads for layer in encoder_layers(module)})
    facts["heads_per_layer"] = heads_per_layer
    return facts


def shrink_width(
    module,
    job: PassJob,
    fraction: float,
    *,
    importance: str = "l1",
    targets: tuple[str, ...] = ("ffn",),
    batches: int = 4,
    batch_size: int = 16,
    seed: int = 0,
    stage: str = "prune",
) -> dict[str, Any]:
    """Remove ``fraction`` of the units of every prunable layer of ``module`` (in place).

    Returns, for CNN/MLP chains, ``{producer name: kept unit indices}`` (distillation matches hidden
    states through it); for encoders ``{}`` (layer shapes stay comparable). Raises ConfigError when the
    model has no structure this pass can remove.
    """
    grads = _taylor_grads(module, job, batches, batch_size, seed) if importance == "taylor" else None
    if is_encoder(module):
        if not hasattr(module.encoder, "prune_heads") or not hasattr(encoder_layers(module)[0], "intermediate"):
            raise ConfigError(
                f"structured pruning supports BERT-like encoders (attention.self + intermediate "
                f"FFN); {type(module.encoder).__name__} has a different layout."
            )
        module._wb_prune_facts = _prune_encoder(module, fraction, targets, grads)
        return {}
    pairs = prunable_chain(module, job.model.data.eval.take(slice(0, 2)).inputs)
    if not pairs:
        raise ConfigError(
            f"structured pruning found no prunable structure in {job.model.name!r} ({type(module).__name__}): it "
            "needs a BERT-like encoder (heads / FFN neurons) or two Conv2d/Linear layers in a row (channels / "
            "hidden units). Use magnitude-prune for other models."
        )
    kept = {}
    scores = [_chain_scores(p, grads) for p in pairs]  # rank on the unpruned weights
    for pair, s in zip(pairs, scores):
        keep = _keep_top(s, fraction)
        kept[pair["producer"][0]] = keep
        _prune_pair(pair, keep)
    return kept


def _params(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


@register_pass(StructuredPrune)
def _structured(art: Artifact, cfg: StructuredPrune, job: PassJob) -> Artifact:
    stage = job.stage or "structured-prune"
    module = copy.deepcopy(art.module)
    job.ctx.begin(stage, total=1, message=f"ranking units ({cfg.importance})")
    before = _params(module)
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
    after = _params(module)
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
    if "heads_per_layer" in facts:
        hp = facts["heads_per_layer"]
        # ONNX Runtime's attention fusion needs the head count: record it when every layer agrees
        meta["num_heads"] = hp[0] if len(hp) == 1 else 0
    return torch_artifact(module, art.input_names, **meta)


def _register_recipes() -> None:
    from ..recipes import INT8_FUSIONS, Recipe, register_recipe
    from .distill import Distill
    from .export import OnnxExport
    from .quantize import DynamicInt8

    tail = (OnnxExport(), INT8_FUSIONS, DynamicInt8(per_channel=True))
    register_recipe(
        Recipe(
            "prune-structured-int8",
            (StructuredPrune(sparsity=0.5), *tail),
            "half the heads / FFN neurons (or channels) removed and fine-tuned, then fused graph + dynamic INT8",
            ("prune", "int8"),
        )
    )
    register_recipe(
        Recipe(
            "prune-distill-int8",
            (StructuredPrune(sparsity=0.5, targets=("ffn",), finetune_steps=0), Distill(), *tail),
            "half the FFN neurons removed, a half-depth student distilled from the FP32 teacher, then dynamic INT8",
            ("prune", "distill", "int8"),
        )
    )
    register_recipe(
        Recipe(
            "magnitude-prune-50",
            (MagnitudePrune(sparsity=0.5, finetune_steps=100),),
            "half the weights zeroed (smaller zipped, same latency), fine-tuned",
            ("prune",),
        )
    )


_register_recipes()
