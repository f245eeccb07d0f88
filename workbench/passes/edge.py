"""What the edge-format passes (ExecuTorch, LiteRT) share: capture with ``torch.export`` and errors that name the
construct that stopped it, PT2E quantization with calibration, and the parity check against PyTorch.

Parity: an FP32 program is checked against the FP32 module (``atol``, as the ONNX export); a quantized program
against the same quantized graph run by PyTorch (``convert_pt2e``'s output), within ``quant_rtol`` of the largest
reference output or quantization's own error, whichever is larger (see :func:`check_parity`): a difference beyond
that is the runtime's, not quantization's, whose cost the task metrics measure.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.artifact import Artifact
from ..core.config import PassConfig, check_range
from ..core.errors import ParityError, PassError
from .registry import PassJob

__all__ = [
    "EdgeSample",
    "edge_sample",
    "require_runtime",
    "float32_module",
    "capture",
    "pt2e_quantize",
    "check_parity",
    "conversion_error",
    "quiet_conversion",
]


@dataclass
class EdgeSample:
    """Batch-1 example arguments (tracing) and the parity examples (numpy, by input name)."""

    args: tuple[Any, ...]
    parity: dict[str, np.ndarray]
    n: int


def edge_sample(art: Artifact, job: PassJob, parity_samples: int) -> EdgeSample:
    import torch

    ev = job.model.data.eval
    split = ev.take(slice(0, min(parity_samples, len(ev))))
    # a fresh copy: a slice keeps odd strides on its size-1 axes, and torch.export would record them as the input's
    # dim order, which ExecuTorch's runtime then refuses for every ordinary input
    args = tuple(torch.from_numpy(np.array(split.inputs[n][:1], order="C", copy=True)) for n in art.input_names)
    return EdgeSample(args, split.inputs, len(split))


@dataclass(frozen=True)
class EdgeExport(PassConfig):
    """The settings every edge export shares: calibration, per-channel weights, the parity check at export and the
    profile behind the delegation report. Subclasses add ``kind``, ``produces`` and their ``quantize`` choices."""

    #: one weight scale per output channel (XNNPACK's and LiteRT's INT8 convolutions and linears take them)
    per_channel: bool = True
    #: calibration samples for static INT8 (the calibration split, never the eval split)
    samples: int = 64
    #: FP32: max |exported - PyTorch| over the parity samples (lowering / conversion differences are ~1e-6)
    atol: float = 1e-3
    #: INT8: the export against the same quantized graph in PyTorch, within this share of the largest output or
    #: quantization's own error (max |quantized graph - FP32|), whichever is larger
    quant_rtol: float = 0.05
    parity_samples: int = 8
    #: runs of the profile behind the delegation report (0: no report)
    profile_runs: int = 20

    def validate(self) -> None:
        name = type(self).__name__
        check_range(name, "samples", self.samples, 1, 100_000, integer=True)
        check_range(name, "atol", self.atol, 0, 1, lo_open=True)
        check_range(name, "quant_rtol", self.quant_rtol, 0, 1, lo_open=True)
        check_range(name, "parity_samples", self.parity_samples, 1, 1024, integer=True)
        check_range(name, "profile_runs", self.profile_runs, 0, 10_000, integer=True)

    @property
    def quantizes(self) -> bool:
        return getattr(self, "quantize", "none") != "none"

    @classmethod
    def example(cls):
        """A fast valid config for the pass contract suite: fewer parity samples and profile runs."""
        return cls(parity_samples=4, profile_runs=2)


def require_runtime(runtime: str, kind: str) -> None:
    from ..core.edge_runtime import edge_runtime_missing

    why = edge_runtime_missing(runtime)
    if why:
        raise PassError(f"{kind} cannot run: {why}.")


def float32_module(module, kind: str):
    """A float32 copy of the module in eval mode (capture must not touch the caller's module)."""
    import torch

    if any(p.dtype != torch.float32 for p in module.parameters() if p.is_floating_point()):
        raise PassError(
            f"{kind} needs a float32 model; quantize with the pass's own 'quantize' setting instead of a "
            "bf16/fp16 cast before it."
        )
    return copy.deepcopy(module).eval()


#: torch.export failure -> the construct that causes it and what to do (matched on the exception text)
_CAPTURE_CAUSES: tuple[tuple[str, str], ...] = (
    (
        r"data.dependent|GuardOnDataDependentSymNode|Could not guard on data-dependent",
        "control flow or a shape that depends on the input values (an `if` on a tensor, `.item()`, "
        "`nonzero`): torch.export needs one graph for every input",
    ),
    (
        r"Unsupported: call_function|Dynamo does not know how|graph break",
        "a Python construct torch.export cannot trace",
    ),
    (r"not supported|unsupported", "an operation the exporter does not support"),
)


def _source_line(e: BaseException) -> str:
    """The user's source line in the traceback text of ``e`` (torch.export quotes it), if any."""
    m = re.search(r'File "([^"]+)", line (\d+)', str(e))
    return f" at {m.group(1)}:{m.group(2)}" if m else ""


def conversion_error(e: BaseException, kind: str, stage: str, works: str) -> PassError:
    """A PassError that says which construct or operator stopped ``stage`` and which recipe would work."""
    text = f"{type(e).__name__}: {e}"
    first = text.strip().splitlines()[0][:400] if text.strip() else type(e).__name__
    ops = sorted(set(re.findall(r"(aten[.:]{1,2}[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)", text)))
    cause = next((why for pat, why in _CAPTURE_CAUSES if re.search(pat, text, re.IGNORECASE)), None)
    parts = [f"{kind} failed while {stage}"]
    if ops:
        parts.append(f"at operator {', '.join(ops[:3])}")
    if cause:
        parts.append(f"because of {cause}{_source_line(e)}")
    msg = " ".join(parts) + f" ({first})."
    return PassError(f"{msg} {works}")


def capture(module, args: tuple, kind: str, works: str):
    """``torch.export.export`` (strict=False), with an error naming the construct that stops it."""
    import torch

    try:
        with quiet_conversion():
            return torch.export.export(module, args, strict=False)
    except Exception as e:
        raise conversion_error(e, kind, "capturing the model with torch.export", works) from None


def pt2e_quantize(ep_module, quantizer, batches: Sequence[tuple], job: PassJob, *, fold: bool = True):
    """Insert observers, run the calibration batches (progress and cancel between them), convert."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with quiet_conversion():
        prepared = prepare_pt2e(ep_module, quantizer)
        for b in batches:
            prepared(*b)
            job.ctx.step()
        return convert_pt2e(prepared, fold_quantize=fold)


def calibration_args(job: PassJob, art: Artifact, n: int, needed_by: str) -> list[tuple]:
    import torch

    return [
        tuple(torch.from_numpy(np.array(b[name], order="C", copy=True)) for name in art.input_names)
        for b in job.calibration(n, needed_by)
    ]


def module_runner(module, input_names: tuple[str, ...]) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Run a (batch-1 captured) module over a batch one example at a time, as the edge runtimes do."""
    import torch

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        n = len(inputs[input_names[0]])
        outs = []
        with torch.no_grad():
            for i in range(n):
                out = module(*(torch.from_numpy(np.array(inputs[k][i : i + 1], order="C")) for k in input_names))
                outs.append((out[0] if isinstance(out, (tuple, list)) else out).detach().float().numpy())
        return np.concatenate(outs, axis=0)

    return run


def check_parity(
    ref: np.ndarray,
    got: np.ndarray,
    *,
    what: str,
    against: str,
    n: int,
    atol: float,
    rtol: float = 0.0,
    fp32: np.ndarray | None = None,
) -> float:
    """Max |got - ref|; ParityError (with the numbers) above the tolerance.

    FP32: ``atol``. Quantized (``fp32`` = the FP32 module's outputs): ``atol + max(rtol * max|ref|, max|ref - fp32|)``:
    the runtime's integer kernels may add as much error as quantization itself makes (they round differently from
    PyTorch's reference ops, and deep models add those differences up: all-MiniLM-L6-v2 static INT8 in LiteRT differs
    from its PyTorch graph by 0.043 where that graph differs from FP32 by 0.063), not more."""
    if ref.shape != got.shape:
        raise ParityError(
            f"{what} gives outputs of shape {got.shape}, {against} {ref.shape} over {n} samples.", float("inf"), atol
        )
    diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    peak = float(np.max(np.abs(ref))) if ref.size else 0.0
    quant = float(np.max(np.abs(ref - fp32))) if fp32 is not None and ref.size else 0.0
    tol = atol + max(rtol * peak, quant)
    if not np.isfinite(diff) or diff > tol:
        how = f"atol {atol:g}"
        if rtol or fp32 is not None:
            how = (
                f"{tol:.3g} = {how} + max({rtol:g} x max |reference| {peak:.3g}, quantization's own error {quant:.3g})"
            )
        raise ParityError(
            f"{what} does not match {against}: max abs diff {diff:.3g} > tolerance {how} over {n} samples.",
            diff,
            tol,
        )
    return diff


class quiet_conversion(warnings.catch_warnings):
    """The exporters warn a lot (deprecations, pytree notes): keep a run's output readable."""

    def __enter__(self):
        out = super().__enter__()
        warnings.simplefilter("ignore")
        return out
