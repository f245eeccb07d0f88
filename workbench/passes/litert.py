"""LiteRT export: a ``.tflite`` model converted by ``litert-torch`` (no TensorFlow), FP32, dynamic-range INT8 or
full INT8 with calibration, run by ``ai-edge-litert``'s interpreter (XNNPACK delegate by default).

- ``quantize="int8-dynamic"``: INT8 weights, activations quantized at run time per call (no calibration);
- ``quantize="int8"``: INT8 weights and activations with ranges from calibration samples; when the first operator is
  quantized the model takes INT8 inputs (scale and zero point in the file): the runner quantizes them.

Needs ``pip install 'workbench[edge]'``; ``import workbench`` never imports litert-torch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..core.artifact import Artifact, edge_artifact
from ..core.errors import ModelLoadError, PassError, WorkbenchError
from .edge import (
    EdgeExport,
    calibration_args,
    capture,
    check_parity,
    conversion_error,
    edge_sample,
    float32_module,
    module_runner,
    pt2e_quantize,
    quiet_conversion,
    require_runtime,
)
from .registry import PassJob, register_pass

__all__ = ["LiteRTExport"]

_WORKS = (
    "Recipes that would work: the ONNX ones (ort-fp32, ort-int8-dynamic, ort-int8-static), whose exporter traces "
    "the model with example inputs instead of capturing every branch."
)


@dataclass(frozen=True)
class LiteRTExport(EdgeExport):
    """Capture with ``torch.export``, optionally quantize (PT2E, litert-torch's quantizer), convert to ``.tflite``
    with litert-torch; check it against PyTorch with LiteRT's interpreter."""

    kind: ClassVar[str] = "litert-export"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "litert"
    summary: ClassVar[str] = "LiteRT model (.tflite): FP32, dynamic-range INT8 or full INT8; parity-checked"

    #: "int8-dynamic": INT8 weights, activations quantized at run time; "int8": full INT8 from calibration samples
    quantize: Literal["none", "int8-dynamic", "int8"] = "none"


@contextlib.contextmanager
def _quiet_litert():
    """litert-torch prints a progress tree and its converter logs through absl: keep a run's output readable."""
    old = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    logging.disable(logging.WARNING)
    try:
        with quiet_conversion(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)
        if old is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = old


@register_pass(LiteRTExport)
def _litert(art: Artifact, cfg: LiteRTExport, job: PassJob) -> Artifact:
    calibrated = cfg.quantize == "int8"
    job.ctx.begin(job.stage or "litert-export", total=5 + (cfg.samples if calibrated else 1), message="capturing")
    job.ctx.step(message="capturing with torch.export")  # honours a cancel before the slow imports
    require_runtime("litert", "litert-export")
    module = float32_module(art.module, "litert-export")
    sample = edge_sample(art, job, cfg.parity_samples)
    meta = {**art.meta, "exported_from": "torch", "precision": "fp32", "params": _params(module)}
    reference, kwargs = module, {}
    if cfg.quantize != "none":
        from litert_torch.quantize import pt2e_quantizer, quant_config

        ep = capture(module, sample.args, "litert-export", _WORKS)
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(
                is_per_channel=cfg.per_channel, is_dynamic=cfg.quantize == "int8-dynamic"
            )
        )
        # dynamic range: observers see the example once (weights only matter); full INT8: the calibration split
        batches = (
            calibration_args(job, art, cfg.samples, "litert-export (quantize='int8')") if calibrated else [sample.args]
        )
        try:
            reference = pt2e_quantize(ep.module(), quantizer, batches, job, fold=False)
        except WorkbenchError:  # a cancel between calibration batches
            raise
        except Exception as e:
            raise conversion_error(e, "litert-export", "quantizing (PT2E, litert-torch's quantizer)", _WORKS) from None
        kwargs = {"quant_config": quant_config.QuantConfig(pt2e_quantizer=quantizer)}
        meta.update(
            precision="int8-static" if calibrated else "int8-dynamic",
            granularity="per-channel" if cfg.per_channel else "per-tensor",
        )
        if calibrated:
            meta.update(calibration="minmax (PT2E observers)", calibration_samples=len(batches))
    else:
        capture(module, sample.args, "litert-export", _WORKS)  # the same named errors as the quantized path
    job.ctx.step(message="converting to .tflite")
    import litert_torch

    path = job.out_path("model.tflite")
    try:
        with _quiet_litert():
            litert_torch.convert(reference, sample.args, **kwargs).export(str(path))
    except Exception as e:
        raise conversion_error(
            e,
            "litert-export",
            "converting with litert-torch",
            "Recipes that would work: executorch-fp32 (ExecuTorch runs operators outside its delegate on its own "
            "kernels) or the ONNX ones (ort-fp32, ort-int8-dynamic).",
        ) from None
    out = edge_artifact(path, art.input_names, **meta)
    job.ctx.step(message="parity check")
    try:
        run = out.runner(job.threads)
    except ModelLoadError as e:  # converted, but LiteRT's kernels refuse an operator of it
        node = re.search(r"Node number (\d+) \((\w+)\) failed to prepare", str(e))
        what = f"operator {node.group(2)} (node {node.group(1)})" if node else "the converted model"
        other = "litert-fp32, litert-int8 (full INT8)" if cfg.quantize == "int8-dynamic" else "litert-fp32"
        raise PassError(
            f"litert-export ({cfg.quantize}) converted the model but LiteRT cannot run it: {what} is refused by its "
            f"kernel ({str(e).split(': ', 1)[-1][:300]}). Recipes that would work: {other}, executorch-int8, or "
            "the ONNX ones (ort-int8-dynamic)."
        ) from None
    got = run(sample.parity)
    if cfg.quantize != "none":
        ref = module_runner(reference, art.input_names)(sample.parity)
        diff = check_parity(
            ref, got, what=f"The LiteRT {cfg.quantize.upper()} model", against="its quantized graph in PyTorch",
            n=sample.n, atol=cfg.atol, rtol=cfg.quant_rtol, fp32=art.runner(job.threads)(sample.parity),
        )  # fmt: skip
    else:
        ref = art.runner(job.threads)(sample.parity)
        diff = check_parity(ref, got, what="The LiteRT model", against="PyTorch", n=sample.n, atol=cfg.atol)
    from ..core.edge_runtime import litert_signature

    ins, outs = litert_signature(run.interpreter)
    meta = {
        "parity_max_abs_diff": diff,
        "delegate": "XNNPACK",
        "input_types": [str(d["dtype"].__name__) for d in ins],
        "quantized_inputs": any(d["quantization"][0] for d in ins),
        "quantized_outputs": any(d["quantization"][0] for d in outs),
    }
    job.ctx.step(message=f"max abs diff {diff:.2g}; profiling")
    if cfg.profile_runs:
        from ..measure.delegation import litert_delegation

        with job.ctx.timed():
            rep = litert_delegation(
                path, art.input_names, job.model.bench_inputs(), threads=job.threads or 1, runs=cfg.profile_runs
            )
        meta["delegation"] = rep.to_dict()
        meta["fully_delegated"] = rep.fully_delegated
    job.ctx.step(message="done")
    return out.with_meta(**meta)


def _params(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))
