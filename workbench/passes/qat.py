"""Quantization-aware training: fine-tune with fake-quantized weights and activations, export INT8 ONNX.

Every Conv1d / Conv2d / Linear gets a fake quantizer on its input (uint8, per tensor, range from calibration
then a moving average while training) and on its weight (symmetric, per output channel, on a
``weight_bits`` grid). Gradients pass the rounding straight through (``torch.fake_quantize_*``), so
the weights learn to sit where rounding hurts least. At low bit-widths that recovers most of what
post-training quantization (PTQ) loses; the pass measures both on the same grid and records them.

The export writes QuantizeLinear/DequantizeLinear pairs (QDQ) with the weights stored as int8
initializers; ONNX Runtime fuses them into integer kernels (QLinearConv, MatMulInteger...). Weights
of fewer than 8 bits are stored in int8 containers, exactly (a 4-bit grid is a subset of int8's).

>>> from workbench.passes import QuantAwareTraining
>>> QuantAwareTraining(weight_bits=4, steps=200).kind
'qat'
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ..core.artifact import Artifact, onnx_artifact
from ..core.config import PassConfig, check_range, check_reduce_range
from ..core.env import int8_weight_note, resolve_reduce_range, u8s8_saturates
from ..core.errors import ConfigError, ParityError, PassError
from ..measure.evaluate import cosine_rows, predict
from .registry import PassJob, register_pass
from .training import default_lr, train_student

__all__ = ["QuantAwareTraining", "fold_weight_quantizers"]


@dataclass(frozen=True)
class QuantAwareTraining(PassConfig):
    """Fake-quantized fine-tuning (uint8 activations, int8-stored weights) exported to an INT8 ONNX model."""

    kind: ClassVar[str] = "qat"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "onnx"
    quantizes: ClassVar[bool] = True
    needs_float_weights: ClassVar[bool] = True
    summary: ClassVar[str] = "fine-tune with simulated int8 (or lower-bit weights), export a QDQ INT8 ONNX model"

    #: weight grid: 8 = plain INT8; 2-7 = a coarser grid stored in int8 (where QAT beats PTQ clearly)
    weight_bits: int = 8
    #: one scale per output channel (robust to channels of different range) or one per tensor
    per_channel: bool = True
    #: training steps; 0 = post-training quantization only (same grid, same export)
    steps: int = 200
    batch_size: int = 32
    #: None = a quarter of the float fine-tuning rate: the weights only need to settle on the grid
    lr: float | None = None
    #: batches of the calibration split that set the activation ranges before training
    calibration_batches: int = 8
    #: weight of the teacher-logit loss (the float model is the teacher); the rest goes to the labels
    alpha: float = 0.5
    temperature: float = 2.0
    seed: int = 0
    max_seconds: float = 600.0
    #: module names (or name prefixes) kept in float, e.g. a first conv or the classifier
    skip: tuple[str, ...] = ()
    opset: int = 17
    #: 8-bit weights on a 7-bit grid where ONNX Runtime's u8s8 kernels saturate (x86 without VNNI):
    #: "auto" decides from this CPU, so the exported model computes exactly what PyTorch trained
    reduce_range: bool | Literal["auto"] = "auto"

    def validate(self) -> None:
        check_reduce_range("QuantAwareTraining", self.reduce_range)
        check_range("QuantAwareTraining", "weight_bits", self.weight_bits, 2, 8, integer=True)
        check_range("QuantAwareTraining", "steps", self.steps, 0, 1_000_000, integer=True)
        check_range("QuantAwareTraining", "batch_size", self.batch_size, 1, 4096, integer=True)
        if self.lr is not None:
            check_range("QuantAwareTraining", "lr", self.lr, 0, 1, lo_open=True)
        check_range("QuantAwareTraining", "calibration_batches", self.calibration_batches, 1, 10_000, integer=True)
        check_range("QuantAwareTraining", "alpha", self.alpha, 0, 1)
        check_range("QuantAwareTraining", "temperature", self.temperature, 0.5, 20)
        check_range("QuantAwareTraining", "seed", self.seed, 0, 2**31 - 1, integer=True)
        check_range("QuantAwareTraining", "max_seconds", self.max_seconds, 0, 86_400, lo_open=True)
        check_range("QuantAwareTraining", "opset", self.opset, 13, 23, integer=True)
        if not isinstance(self.skip, tuple) or not all(isinstance(s, str) and s for s in self.skip):
            raise ConfigError.out_of_range("QuantAwareTraining", "skip", self.skip, "a tuple of module names")

    @classmethod
    def example(cls) -> QuantAwareTraining:
        return cls(weight_bits=8, steps=20, calibration_batches=2)


def _fq_module():
    import torch

    class FakeQuant(torch.nn.Module):
        """A Conv2d/Linear with fake-quantized input (uint8, per tensor) and weight (symmetric grid)."""

        def __init__(self, layer, bits: int, per_channel: bool):
            super().__init__()
            self.layer = layer
            self.qmax = 2 ** (bits - 1) - 1
            self.per_channel = per_channel
            self.register_buffer("a_min", torch.tensor(float("inf")))
            self.register_buffer("a_max", torch.tensor(float("-inf")))
            self.observe = "minmax"  # "minmax" (calibration), "ema" (early training), "off"
            self.exporting = False

        def _act_qparams(self) -> tuple[float, int]:
            lo = min(float(self.a_min), 0.0)
            hi = max(float(self.a_max), 0.0)
            scale = max((hi - lo) / 255.0, 1e-8)
            return scale, int(min(255, max(0, round(-lo / scale))))

        def _w_scale(self, w):
            if self.per_channel:
                return w.detach().abs().amax(dim=tuple(range(1, w.dim()))).clamp(min=1e-8) / self.qmax
            return (w.detach().abs().max().clamp(min=1e-8) / self.qmax).reshape(1)

        def quantized_weight(self, w, lo: int, hi: int, s=None):
            s = self._w_scale(w) if s is None else s
            if self.per_channel:
                zp = torch.zeros(len(s), dtype=torch.int32)
                return torch.fake_quantize_per_channel_affine(w, s, zp, 0, lo, hi)
            return torch.fake_quantize_per_tensor_affine(w, float(s), 0, lo, hi)

        def forward(self, x):
            if self.observe != "off" and not self.exporting:
                with torch.no_grad():
                    lo, hi = x.detach().min(), x.detach().max()
                    if self.observe == "minmax" or not torch.isfinite(self.a_min):
                        self.a_min.copy_(torch.minimum(self.a_min, lo))
                        self.a_max.copy_(torch.maximum(self.a_max, hi))
                    else:  # moving average: ranges follow the weights as they change
                        self.a_min.mul_(0.99).add_(0.01 * lo)
                        self.a_max.mul_(0.99).add_(0.01 * hi)
            scale, zp = self._act_qparams()
            x = torch.fake_quantize_per_tensor_affine(x, scale, zp, 0, 255)
            if self.exporting:
                # weights already lie on the grid and the scale is a constant: re-quantizing with the int8
                # range is exact and exports as QuantizeLinear(constant), folded to int8 data afterwards
                w = self.quantized_weight(self.w_grid, -128, 127, self.w_scale)
            else:
                w = self.quantized_weight(self.layer.weight, -self.qmax, self.qmax)
            if isinstance(self.layer, torch.nn.Linear):
                return torch.nn.functional.linear(x, w, self.layer.bias)
            return self.layer._conv_forward(x, w, self.layer.bias)

        def freeze_for_export(self) -> None:
            with torch.no_grad():
                w = self.layer.weight
                self.register_buffer("w_scale", self._w_scale(w).clone())
                self.register_buffer("w_grid", self.quantized_weight(w, -self.qmax, self.qmax, self.w_scale).clone())
            self.exporting = True

    return FakeQuant


def _wrap(module, bits: int, per_channel: bool, skip: tuple[str, ...]) -> list[Any]:
    import torch

    fq_cls = _fq_module()
    wrapped = []
    targets = [
        (n, m)
        for n, m in module.named_modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d))
        and n
        and not any(n == s or n.startswith(s + ".") for s in skip)
    ]
    for name, layer in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        fq = fq_cls(layer, bits, per_channel)
        setattr(parent, attr, fq)
        wrapped.append(fq)
    return wrapped


def _set_observe(wrapped: list[Any], mode: str) -> None:
    for w in wrapped:
        w.observe = mode


def fold_weight_quantizers(model) -> int:
    """Replace QuantizeLinear nodes on constant weights by their int8 result (in place); returns how many.

    The exporter writes weight fake-quantization as Q(float W) -> DQ; storing Q's output instead
    makes the file 4x smaller and gives ONNX Runtime the int8 weights its QDQ fusions look for.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    keep_nodes, new_inits, folded = [], [], 0
    for n in g.node:
        if (
            n.op_type == "QuantizeLinear"
            and all(i in consts for i in n.input if i)
            and n.input[0] in {i.name for i in g.initializer}
        ):
            w, s = consts[n.input[0]], consts[n.input[1]]
            zp = consts[n.input[2]] if len(n.input) > 2 and n.input[2] else np.zeros_like(s, dtype=np.uint8)
            axis = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), 1)
            if s.ndim == 1 and s.size > 1:
                shape = [1] * w.ndim
                shape[axis] = s.size
                s, zpb = s.reshape(shape), zp.reshape(shape)
            else:
                zpb = zp
            info = np.iinfo(zp.dtype)
            q = np.clip(np.rint(w / s) + zpb.astype(np.int64), info.min, info.max).astype(zp.dtype)
            new_inits.append(numpy_helper.from_array(q, n.output[0]))
            folded += 1
        else:
            keep_nodes.append(n)
    del g.node[:]
    g.node.extend(keep_nodes)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    live_nodes = [n for n in g.node if n.op_type != "Constant" or any(o in used for o in n.output)]
    del g.node[:]
    g.node.extend(live_nodes)
    return folded


def _score(job: PassJob, module) -> dict[str, Any]:
    from ..core.artifact import torch_artifact

    out = predict(torch_artifact(module, job.model.baseline.input_names).runner(job.threads), job.model.data.eval)
    m = job.model.task.metrics(out, job.model.data.eval.labels, job.model.reference_outputs(job.threads))
    return {k: m[k] for k in ("accuracy", "fidelity", "cosine") if k in m}


@register_pass(QuantAwareTraining)
def _qat(art: Artifact, cfg: QuantAwareTraining, job: PassJob) -> Artifact:
    import onnx
    import torch

    stage = job.stage or "qat"
    student = copy.deepcopy(art.module).eval()
    reduce = resolve_reduce_range(cfg.reduce_range)
    # u8 x s8 pairs stay within int16 with |w| <= 64: a 2-7 bit grid already does, 8 bits become 7
    bits = min(cfg.weight_bits, 7) if reduce else cfg.weight_bits
    wrapped = _wrap(student, bits, cfg.per_channel, cfg.skip)
    if not wrapped:
        raise ConfigError(
            f"qat found no Conv1d/Conv2d/Linear layer to quantize in {job.model.name!r} (skip={cfg.skip!r})."
        )
    calib = job.model.data.calibration or job.model.data.train
    if calib is None or len(calib) == 0:
        raise PassError(
            f"qat needs calibration or training data to set activation ranges; {job.model.name!r} has none."
        )
    names = art.input_names
    n_cal = min(cfg.calibration_batches, -(-len(calib) // 16))
    job.ctx.begin(f"{stage} / calibrate", total=n_cal)
    _set_observe(wrapped, "minmax")
    with torch.no_grad():
        for i in range(n_cal):
            b = calib.take(slice(16 * i, 16 * (i + 1)))
            student(*[torch.from_numpy(np.ascontiguousarray(b.inputs[n])) for n in names])
            job.ctx.step()
    _set_observe(wrapped, "off")
    ptq = _score(job, student)
    facts: dict[str, Any] = {
        "weight_bits": cfg.weight_bits,
        "weight_grid_bits": bits,
        "reduce_range": reduce,
        "int8_weights": int8_weight_note(reduce),
        "activation_bits": 8,
        "per_channel": cfg.per_channel,
        "layers_quantized": len(wrapped),
        "ptq": ptq,
    }
    if cfg.steps:
        freeze_at = cfg.steps // 2  # ranges follow training first, then stay put so weights adapt to them

        def after(i: int) -> None:
            _set_observe(wrapped, "ema" if i + 1 < freeze_at else "off")

        _set_observe(wrapped, "ema")
        facts["train"] = train_student(
            student,
            art.module,
            job,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr or default_lr(art.module) / 4,
            seed=cfg.seed,
            max_seconds=cfg.max_seconds,
            temperature=cfg.temperature,
            alpha=cfg.alpha,
            after_step=after,
            stage=stage,
        )
        _set_observe(wrapped, "off")
        facts["qat"] = _score(job, student)
    else:
        facts["qat"] = ptq
    if ptq.get("accuracy") is not None:
        facts["accuracy_recovered"] = facts["qat"]["accuracy"] - ptq["accuracy"]

    job.ctx.begin(f"{stage} / export", total=2, message="exporting QDQ")
    for w in wrapped:
        w.freeze_for_export()
    sample = job.model.data.eval.take(slice(0, min(32, len(job.model.data.eval)))).inputs
    args = tuple(torch.from_numpy(np.ascontiguousarray(sample[n][:2])) for n in names)
    path = job.out_path("model.onnx")
    axes = {
        n: ({0: "batch", 1: "sequence"} if sample[n].ndim == 2 and sample[n].dtype.kind == "i" else {0: "batch"})
        for n in names
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                student,
                args,
                str(path),
                input_names=list(names),
                output_names=["output"],
                dynamic_axes={**axes, "output": {0: "batch"}},
                opset_version=cfg.opset,
                do_constant_folding=True,
                dynamo=False,
            )
        except Exception as e:
            raise PassError(f"qat export failed: {type(e).__name__}: {e}") from None
    model = onnx.load(str(path))
    facts["weights_folded_to_int8"] = fold_weight_quantizers(model)
    onnx.save(model, str(path))
    job.ctx.step(message="parity check")
    out = onnx_artifact(path, **{**art.meta, "precision": f"int8-qat (w{bits}a8)", "qat": facts})
    from ..core.artifact import torch_artifact

    ref = torch_artifact(student, names).runner(job.threads)(sample)
    got = out.runner(job.threads)(sample)
    cos = float(cosine_rows(got, ref).min())
    # the QDQ graph is the fake-quantized model, op for op: only rounding ties (x / s vs x * (1 / s)) may land
    # one step apart, which keeps the cosine above 0.99999 (measured); integer kernels that saturate do not
    if not np.isfinite(got).all() or cos < 0.999:
        hint = (
            " This CPU has no VNNI and its u8s8 kernels saturate with full-range int8 weights: keep "
            "reduce_range='auto' (7-bit weights here)."
            if not reduce and u8s8_saturates()
            else ""
        )
        raise ParityError(
            f"qat export does not match the fake-quantized PyTorch model: min cosine {cos:.5f} < 0.999 over "
            f"{len(got)} samples.{hint}",
            1 - cos,
            0.001,
        )
    job.ctx.step(message=f"parity cosine {cos:.4f}")
    return out.with_meta(parity_min_cosine=cos)
