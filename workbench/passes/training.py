"""The training loop that distillation, structured pruning and QAT share: a student fine-tuned against its
FP32 teacher (temperature-scaled logit loss, labels, optional hidden-state loss), with progress and cancel."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.errors import DataError
from .registry import PassJob

__all__ = ["train_student", "default_lr", "is_encoder", "encoder_layers", "warm_teacher"]


# ---- model shapes -----------------------------------------------------------------------------
def is_encoder(module: Any) -> bool:
    """A workbench MeanPooledEncoder around a BERT-like model (``encoder.encoder.layer``)."""
    enc = getattr(module, "encoder", None)
    return enc is not None and hasattr(getattr(enc, "encoder", None), "layer") and hasattr(enc, "config")


def encoder_layers(module: Any):
    return module.encoder.encoder.layer


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


#: the teacher's outputs over a train split, kept while the teacher lives: an architecture search trains many
#: students of one teacher, and each would otherwise run the teacher over the whole split again
_TEACHER_OUTPUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _teacher_cache(
    teacher, train, names, head_w, head_b, layers: list[int], job: PassJob, stage: str, batch_size: int = 32
) -> dict[str, Any]:
    """Teacher logits, embeddings and the hidden states of ``layers`` (fp16) for the whole train split; computed
    once per teacher and split (a later student needing other layers has the union computed)."""
    held = _TEACHER_OUTPUTS.get(teacher)
    if held is not None and held["train"] is train and set(layers) <= set(held["cache"]["hidden"]):
        return held["cache"]
    if held is not None and held["train"] is train:
        layers = sorted(set(layers) | set(held["cache"]["hidden"]))
    cache = _teacher_pass(teacher, train, names, head_w, head_b, layers, job, stage, batch_size)
    _TEACHER_OUTPUTS[teacher] = {"train": train, "cache": cache}  # the split is held, so its id stays its own
    return cache


def _head_tensors(head) -> tuple[Any, Any]:
    """The task's linear head (weight, bias) as float32 tensors: what an encoder's logits are taken through."""
    import torch

    return (
        torch.from_numpy(np.asarray(head.weight, dtype=np.float32)),
        torch.from_numpy(np.asarray(head.bias, dtype=np.float32)),
    )


def warm_teacher(job: PassJob, layers: list[int], stage: str = "teacher outputs") -> bool:
    """Run an encoder teacher (the model's baseline) over the train split now, for the students trained next:
    each then spends its own time budget on training. False (nothing done) for models that are not text
    encoders with a head, or have no train split."""

    teacher = job.model.baseline.module
    head = getattr(job.model.task, "head", None)
    train = job.model.data.train
    if teacher is None or not is_encoder(teacher) or head is None or train is None or len(train) == 0:
        return False
    _teacher_cache(teacher, train, job.model.baseline.input_names, *_head_tensors(head), layers, job, stage)
    return True


def _teacher_pass(teacher, train, names, head_w, head_b, layers, job: PassJob, stage: str, batch_size: int):
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
    head_w, head_b = _head_tensors(head) if encoder else (None, None)
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
