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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..artifact import Artifact, torch_artifact
from ..config import PassConfig, check_range
from ..errors import ConfigError, DataError
from .registry import PassJob, register_pass

__all__ = ["Distill", "train_student", "is_encoder", "encoder_layers", "drop_layers", "default_lr"]


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


# ---- model shapes -----------------------------------------------------------------------------
def is_encoder(module: Any) -> bool:
    """A workbench MeanPooledEncoder around a BERT-like model (``encoder.encoder.layer``)."""
    enc = getattr(module, "encoder", None)
    return enc is not None and hasattr(getattr(enc, "encoder", None), "layer") and hasattr(enc, "config")


def encoder_layers(module: Any):
    return module.encoder.encoder.layer


def spread(n_in: int, n_out: int) -> list[int]:
    """``n_out`` layer indices spread evenly over ``n_in``, first and last included."""
    if n_out == 1:
        return [n_in - 1]
    return sorted({round(i * (n_in - 1) / (n_out - 1)) for i in range(n_out)})


def drop_layers(module: Any, keep: list[int]) -> None:
    """Keep only the listed transformer layers (in place, on a copy the caller owns)."""
    import torch

    layers = encoder_layers(module)
    module.encoder.encoder.layer = torch.nn.ModuleList([layers[i] for i in keep])
    cfg = module.encoder.config
    cfg.num_hidden_layers = len(keep)
    old = dict(getattr(cfg, "pruned_heads", {}) or {})
    cfg.pruned_heads = {j: old[i] for j, i in enumerate(keep) if i in old}
    for j, layer in enumerate(module.encoder.encoder.layer):  # keep cache/layer bookkeeping consistent
        for sub in layer.modules():
            if hasattr(sub, "layer_idx"):
                sub.layer_idx = j


def default_lr(module: Any) -> float:
    # few epochs on 1.5k articles: a layer-dropped MiniLM student needs a brisk rate to re-align its layers
    return 2e-4 if is_encoder(module) else 1e-3


# ---- forward passes that also return hidden states ----------------------------------------------
def _encoder_forward(module, batch: dict, head_w, head_b, hidden: bool):
    import torch

    mask = batch["attention_mask"]
    out = module.encoder(input_ids=batch["input_ids"], attention_mask=mask, output_hidden_states=hidden)
    m = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
    emb = (out.last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)
    emb = torch.nn.functional.normalize(emb, dim=-1)
    return emb @ head_w.T + head_b, emb, (out.hidden_states if hidden else None)


class _Hooks:
    """Capture the outputs of named submodules (CNN/MLP hidden states) during a forward pass."""

    def __init__(self, module, names: list[str]):
        self.out: dict[str, Any] = {}
        mods = dict(module.named_modules())
        self._handles = [mods[n].register_forward_hook(self._hook(n)) for n in names if n in mods]

    def _hook(self, name: str):
        def fn(_m, _i, o):
            self.out[name] = o

        return fn

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def _rel_mse(s, t, mask=None):
    """MSE normalised by the teacher's mean square: layers of any scale weigh the same."""
    d = (s - t) ** 2
    if mask is not None:
        d = d * mask
        denom = (t**2 * mask).sum().clamp(min=1e-9)
        return d.sum() / denom
    return d.mean() / (t**2).mean().clamp(min=1e-9)


def _teacher_cache(
    teacher, train, names, head_w, head_b, layers: list[int], job: PassJob, stage: str, batch_size: int = 32
) -> dict[str, Any]:
    """Teacher logits, embeddings and the hidden states of ``layers`` (fp16) for the whole train split."""
    import torch

    n = len(train)
    job.ctx.begin(f"{stage} / teacher outputs", total=-(-n // batch_size))
    logits, embs, hidden = [], [], {j: [] for j in layers}
    with torch.no_grad():
        for i in range(0, n, batch_size):
            b = {k: torch.from_numpy(np.ascontiguousarray(train.inputs[k][i : i + batch_size])) for k in names}
            lg, emb, hid = _encoder_forward(teacher, b, head_w, head_b, bool(layers))
            logits.append(lg)
            embs.append(emb)
            for j in layers:
                hidden[j].append(hid[j].half())
            job.ctx.step()
    return {"logits": torch.cat(logits), "emb": torch.cat(embs), "hidden": {j: torch.cat(v) for j, v in hidden.items()}}


def train_student(
    student,
    teacher,
    job: PassJob,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    max_seconds: float,
    temperature: float = 2.0,
    alpha: float = 0.5,
    hidden_weight: float = 0.0,
    layer_map: list[int] | None = None,
    kept: dict[str, Any] | None = None,
    after_step: Callable[[int], None] | None = None,
    stage: str = "train",
) -> dict[str, Any]:
    """Fine-tune ``student`` in place against ``teacher`` on the model's training split.

    loss = alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * CE(labels) + hidden_weight * hidden.
    ``layer_map[i]`` is the teacher hidden-state index matched to student hidden state ``i + 1``
    (encoders); ``kept`` maps a CNN layer name to the teacher channels the student layer kept.
    Reports ``step i loss x`` at every step (so cancel is honoured there) and stops at ``steps`` or
    ``max_seconds``, whichever comes first. Returns the facts to record.
    """
    import torch

    train = job.model.data.train
    if train is None or len(train) == 0:
        raise DataError(
            f"{stage} needs training data, and model {job.model.name!r} has no train split. "
            "Pass data= with a train split to load_model/from_module."
        )
    if train.labels is None and alpha < 1:
        raise DataError(
            f"{stage}: the train split of {job.model.name!r} has no labels; set alpha=1.0 "
            "(learn from the teacher's logits only)."
        )
    encoder = is_encoder(student)
    names = job.model.baseline.input_names
    head = getattr(job.model.task, "head", None)
    if encoder and head is None:
        raise DataError(
            f"{stage}: a text encoder is trained through its task's linear head, and the task of "
            f"{job.model.name!r} ({job.model.task.name}) has none."
        )
    head_w = torch.from_numpy(np.asarray(head.weight, dtype=np.float32)) if encoder else None
    head_b = torch.from_numpy(np.asarray(head.bias, dtype=np.float32)) if encoder else None
    hooked = [n for n in (kept or {})] if not encoder and hidden_weight > 0 else []

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prev_threads = torch.get_num_threads()
    # a small model's ops are too short to split: one thread trains it faster (20x on a busy 2-core box)
    threads = 1 if sum(p.numel() for p in student.parameters()) < 5_000_000 else (job.threads or prev_threads)
    torch.set_num_threads(threads)
    if encoder:
        # the token embeddings are 11.7 M of MiniLM's 22.7 M weights: a dense update of them every step
        # costs time and overfits 1.5k articles; the student keeps the teacher's vocabulary as is
        for p in student.encoder.embeddings.parameters():
            p.requires_grad_(False)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm) * max(0.0, 1 - i / max(steps, 1)))
    teacher.eval()
    student.train()
    s_hooks = _Hooks(student, hooked) if hooked else None
    t_hooks = _Hooks(teacher, hooked) if hooked else None
    want_hidden = encoder and hidden_weight > 0
    lmap = (layer_map or list(range(1, len(encoder_layers(student)) + 1))) if encoder else []
    cache = None
    t0 = time.monotonic()  # the budget covers the teacher pass too
    if encoder and steps * batch_size > len(train):
        # more than one epoch: run the teacher once over the train split instead of at every step
        cache = _teacher_cache(teacher, train, names, head_w, head_b, lmap if want_hidden else [], job, stage)
    job.ctx.begin(stage, total=steps, message=f"lr {lr:g}")
    order = np.empty(0, dtype=np.int64)
    losses: list[float] = []
    done, stopped = 0, "steps"
    try:
        for step in range(steps):
            if time.monotonic() - t0 > max_seconds:
                stopped = "max_seconds"
                break
            if len(order) < batch_size:
                order = np.concatenate([order, rng.permutation(len(train))])
            idx, order = order[:batch_size], order[batch_size:]
            batch = {n: torch.from_numpy(np.ascontiguousarray(train.inputs[n][idx])) for n in names}
            labels = torch.from_numpy(train.labels[idx]) if train.labels is not None else None
            hidden_loss = torch.zeros(())
            if encoder:
                s_logits, s_emb, s_hid = _encoder_forward(student, batch, head_w, head_b, want_hidden)
                if cache is not None:
                    ti = torch.from_numpy(idx)
                    t_logits, t_emb = cache["logits"][ti], cache["emb"][ti]
                    t_hid = {j: cache["hidden"][j][ti].float() for j in lmap} if want_hidden else None
                else:
                    with torch.no_grad():
                        t_logits, t_emb, t_hid = _encoder_forward(teacher, batch, head_w, head_b, want_hidden)
                if want_hidden:
                    mask = batch["attention_mask"].unsqueeze(-1).float()
                    pairs = [_rel_mse(s_hid[i + 1], t_hid[j], mask) for i, j in enumerate(lmap)]
                    cos = 1 - torch.nn.functional.cosine_similarity(s_emb, t_emb, dim=-1).mean()
                    hidden_loss = torch.stack(pairs).mean() + cos
            else:
                s_logits = student(*batch.values())
                with torch.no_grad():
                    t_logits = teacher(*batch.values())
                if hooked:
                    pairs = []
                    for n in hooked:
                        t_out = t_hooks.out[n]
                        k = kept.get(n)
                        if k is not None:
                            t_out = t_out.index_select(1, k)
                        pairs.append(_rel_mse(s_hooks.out[n], t_out))
                    hidden_loss = torch.stack(pairs).mean()
            T = temperature
            kd = (
                torch.nn.functional.kl_div(
                    torch.log_softmax(s_logits / T, -1), torch.softmax(t_logits / T, -1), reduction="batchmean"
                )
                * T
                * T
            )
            ce = torch.nn.functional.cross_entropy(s_logits, labels) if labels is not None else torch.zeros(())
            loss = alpha * kd + (1 - alpha) * ce + hidden_weight * hidden_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if after_step is not None:
                after_step(step)
            done += 1
            losses.append(float(loss.detach()))
            job.ctx.step(message=f"step {step + 1} loss {losses[-1]:.3f}")
    finally:
        for h in (s_hooks, t_hooks):
            if h is not None:
                h.close()
        student.eval()
        torch.set_num_threads(prev_threads)
    return {
        "steps_done": done,
        "train_threads": threads,
        "steps_planned": steps,
        "stopped_by": stopped,
        "train_seconds": time.monotonic() - t0,
        "final_loss": float(np.mean(losses[-10:])) if losses else None,
        "lr": lr,
        "seed": seed,
    }


def _params(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


@register_pass(Distill)
def _distill(art: Artifact, cfg: Distill, job: PassJob) -> Artifact:
    from .prune import shrink_width

    base = job.model.baseline
    teacher = base.module if base.kind == "torch" and base.module is not None else art.module
    student = copy.deepcopy(art.module)  # never touch the caller's module
    facts: dict[str, Any] = {"params_teacher": _params(teacher), "params_before": _params(student)}
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
    else:
        if cfg.student_layers is not None:
            raise ConfigError(
                f"The 'student_layers' parameter of Distill applies to transformer encoders; "
                f"{job.model.name!r} ({type(student).__name__}) has no layer stack. Set student_layers=None "
                f"and shrink it with 'width' (a float in [0.05, 1]). Got {cfg.student_layers!r} instead."
            )
        width = 0.5 if cfg.width is None else cfg.width
    if width < 1.0:
        kept = shrink_width(student, job, 1.0 - width, importance="l1", stage=job.stage or "distill")
    facts["width"] = width
    facts["params_after"] = _params(student)
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
    return torch_artifact(
        student,
        art.input_names,
        **{
            **art.meta,
            "distilled": facts,
            "params_before": facts["params_before"],
            "params_after": facts["params_after"],
        },
    )


def _register_recipes() -> None:
    from ..recipes import INT8_FUSIONS, Recipe, register_recipe
    from .export import OnnxExport
    from .quantize import DynamicInt8

    register_recipe(
        Recipe(
            "distill-int8",
            (Distill(), OnnxExport(), INT8_FUSIONS, DynamicInt8(per_channel=True)),
            "half-depth student trained from the FP32 teacher, then fused graph + dynamic INT8 (transformers: "
            "dynamic INT8 keeps accuracy where static INT8 breaks attention)",
            ("distill", "int8"),
        )
    )


_register_recipes()
