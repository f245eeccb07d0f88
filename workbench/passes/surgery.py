"""Layer surgery shared by structured pruning and distillation: find prunable chains, rank units (L1 or
Taylor importance), remove heads / FFN neurons / channels, drop whole encoder layers."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import ConfigError
from .registry import PassJob
from .training import encoder_layers, is_encoder

__all__ = [
    "prunable_chain",
    "shrink_width",
    "spread",
    "drop_layers",
    "param_count",
    "removable_blocks",
    "drop_blocks",
    "attention_shape",
]


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
        nn.MaxPool1d,
        nn.MaxPool2d,
        nn.AvgPool1d,
        nn.AvgPool2d,
        nn.AdaptiveAvgPool1d,
        nn.AdaptiveAvgPool2d,
        nn.AdaptiveMaxPool1d,
        nn.AdaptiveMaxPool2d,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.Flatten,
    )


def _dense_conv(m) -> bool:
    import torch.nn as nn

    return isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.groups == 1


def _depthwise(m) -> bool:
    """A depthwise convolution (one filter per channel, ``groups == in == out channels``): its channels follow the
    producer's, so removing a producer channel removes that filter too."""
    import torch.nn as nn

    return isinstance(m, (nn.Conv1d, nn.Conv2d)) and 1 < m.groups == m.in_channels == m.out_channels


def _trace(module, sample: dict[str, np.ndarray]) -> tuple[list[tuple], list[Any]]:
    """Every leaf module in forward order on one real input: ``(name, module, id(input), id(output), input shape,
    output shape)``, and the tensors themselves (held, so that no id is reused while the caller compares them)."""
    import torch

    records: list[tuple] = []
    keep_alive: list[Any] = []
    leaves = [(n, m) for n, m in module.named_modules() if n and not list(m.children())]

    def hook(name):
        def fn(m, inp, out):
            x = inp[0] if inp else None
            keep_alive.extend([x, out])
            shape_in = tuple(x.shape) if isinstance(x, torch.Tensor) else ()
            shape_out = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            records.append((name, m, id(x), id(out), shape_in, shape_out))

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    try:
        with torch.no_grad():
            module.eval()
            module(*[torch.from_numpy(np.ascontiguousarray(v[:2])) for v in sample.values()])
    finally:
        for h in handles:
            h.remove()
    return records, keep_alive


def prunable_chain(module, sample: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Producer/consumer pairs whose shared units can be removed: ``[{producer, between, consumer, spatial}]``.

    Producers and consumers are Linear and Conv1d/Conv2d layers (groups 1); ``between`` are channel-wise layers
    (activations, pooling, BatchNorm) and depthwise convolutions, which lose the same channels. The data flow is
    traced with forward hooks on one real input: a pair only counts when the consumer reads exactly the tensor
    the producer (through channel-wise layers) wrote, so models whose forward does something else in between are
    left alone rather than broken.
    """
    import torch.nn as nn

    records, _alive = _trace(module, sample)
    passthrough = _pass_through()
    pairs = []
    for i, (name, m, _, out_id, _, _) in enumerate(records):
        if not (isinstance(m, nn.Linear) or _dense_conv(m)):
            continue
        between, cur, j = [], out_id, i + 1
        while (
            j < len(records)
            and records[j][2] == cur
            and (isinstance(records[j][1], passthrough) or _depthwise(records[j][1]))
        ):
            between.append(records[j][:2])
            cur = records[j][3]
            j += 1
        if j >= len(records) or records[j][2] != cur:
            continue
        cname, c = records[j][0], records[j][1]
        units = m.out_features if isinstance(m, nn.Linear) else m.out_channels
        if isinstance(c, nn.Linear) and c.in_features % units == 0:
            spatial = c.in_features // units
        elif _dense_conv(c) and c.in_channels == units and c.weight.dim() == m.weight.dim():
            spatial = 1
        else:
            continue
        if spatial > 1 and not any(isinstance(b, nn.Flatten) for _, b in between):
            continue
        if any(_depthwise(b) and b.in_channels != units for _, b in between):
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
    for _, b in pair["between"]:  # a depthwise filter belongs to its channel
        if _depthwise(b):
            s = s + term(b.weight, grads and grads.get(id(b.weight))).reshape(units, -1).sum(1)
            if b.bias is not None:
                s = s + term(b.bias, grads and grads.get(id(b.bias)))
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
            if _depthwise(b):
                b.weight = nn.Parameter(b.weight[keep].clone())
                if b.bias is not None:
                    b.bias = nn.Parameter(b.bias[keep].clone())
                b.in_channels = b.out_channels = b.groups = len(keep)
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
    prev_threads = torch.get_num_threads()
    # as in train_student: a small model's ops are too short to split (2 threads on a busy 2-core box: 60x slower)
    if param_count(module) < 5_000_000:
        torch.set_num_threads(1)
    try:
        for _ in range(batches):
            job.ctx.check()
            idx = rng.choice(len(train), size=min(batch_size, len(train)), replace=False)
            args = [torch.from_numpy(np.ascontiguousarray(train.inputs[n][idx])) for n in names]
            out = module(*args)
            if head is not None:
                out = out @ torch.from_numpy(np.asarray(head.weight)).T + torch.from_numpy(np.asarray(head.bias))
            torch.nn.functional.cross_entropy(out, torch.from_numpy(train.labels[idx])).backward()
    finally:
        torch.set_num_threads(prev_threads)
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
            "needs a BERT-like encoder (heads / FFN neurons) or two Conv1d/Conv2d/Linear layers in a row (channels / "
            "hidden units; depthwise convolutions in between follow). Use magnitude-prune for other models."
        )
    kept = {}
    scores = [_chain_scores(p, grads) for p in pairs]  # rank on the unpruned weights
    for pair, s in zip(pairs, scores):
        keep = _keep_top(s, fraction)
        kept[pair["producer"][0]] = keep
        _prune_pair(pair, keep)
    return kept


def param_count(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


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


# ---- depth of CNNs ---------------------------------------------------------------------------------
def removable_blocks(module, sample: dict[str, np.ndarray]) -> list[list[str]]:
    """Convolutions a CNN can lose without any other layer changing shape: dense Conv1d/Conv2d layers whose
    output has exactly the shape of their input (same channels, same length / size), each with the BatchNorm
    that reads its output. ``[[conv name, batchnorm name?], ...]`` in forward order, found by tracing one real
    input through forward hooks (as :func:`prunable_chain` does)."""
    import torch.nn as nn

    records, _alive = _trace(module, sample)
    blocks = []
    for i, (name, m, _, out_id, shape_in, shape_out) in enumerate(records):
        if not _dense_conv(m) or not shape_in or shape_in != shape_out:
            continue
        block = [name]
        if (
            i + 1 < len(records)
            and records[i + 1][2] == out_id
            and isinstance(records[i + 1][1], (nn.BatchNorm1d, nn.BatchNorm2d))
        ):
            block.append(records[i + 1][0])
        blocks.append(block)
    return blocks


def drop_blocks(module, job: PassJob, n: int) -> list[str]:
    """Replace the last ``n`` removable convolutions of a CNN (and their BatchNorms) by identities, in place.
    Returns the names removed; raises ConfigError naming how many the model has when ``n`` is more."""
    import torch.nn as nn

    blocks = removable_blocks(module, job.model.data.eval.take(slice(0, 2)).inputs)
    if n > len(blocks):
        raise ConfigError(
            f"The 'drop_blocks' parameter of Distill is {n}, but {job.model.name!r} has "
            f"{len(blocks)} convolution(s) whose output has the shape of their input (the only ones a CNN can lose "
            f"without reshaping its neighbours): use an int in [0, {len(blocks)}]."
        )
    removed: list[str] = []
    for block in blocks[len(blocks) - n :]:
        for name in block:
            parent_name, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attr, nn.Identity())
            removed.append(name)
    return removed


def attention_shape(module) -> dict[str, int]:
    """What ONNX Runtime's attention fusion must be told of an encoder: its heads per layer (0 when layers differ,
    which lets the fusion read them from the graph)."""
    heads = {layer.attention.self.num_attention_heads for layer in encoder_layers(module)}
    return {"num_heads": heads.pop() if len(heads) == 1 else 0}
