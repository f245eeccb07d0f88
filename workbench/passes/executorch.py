"""ExecuTorch export: a ``.pte`` program lowered to the XNNPACK CPU delegate, FP32 or INT8 (PT2E, calibrated).

The program is what a phone or a Raspberry Pi runs with ExecuTorch's runtime; the pass checks it against PyTorch
with that runtime, and records which operators stayed outside XNNPACK (the delegation report, measured here).
Needs ``pip install 'workbench[edge]'``; ``import workbench`` never imports ExecuTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..core.artifact import Artifact, edge_artifact
from ..core.errors import WorkbenchError
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

__all__ = ["ExecuTorchExport"]

#: what to try when a model does not capture or lower
_WORKS = (
    "Recipes that would work: the ONNX ones (ort-fp32, ort-int8-dynamic, ort-int8-static), whose exporter traces "
    "the model with example inputs instead of capturing every branch."
)


#: graph nodes that are not operators (the tuple access of a delegate's outputs)
_NOT_OPS = {"getitem", "output", "placeholder"}


@dataclass(frozen=True)
class ExecuTorchExport(EdgeExport):
    """Capture with ``torch.export``, optionally quantize to INT8 (PT2E, ``XNNPACKQuantizer``), lower to the XNNPACK
    delegate and write a ``.pte`` program; check it against PyTorch with ExecuTorch's runtime."""

    kind: ClassVar[str] = "executorch-export"
    consumes: ClassVar[str] = "torch"
    produces: ClassVar[str] = "executorch"
    summary: ClassVar[str] = "ExecuTorch program (.pte) on the XNNPACK delegate, FP32 or INT8; parity-checked"

    #: "int8": static INT8 weights and activations (XNNPACK's symmetric scheme), ranges from calibration samples
    quantize: Literal["none", "int8"] = "none"


@register_pass(ExecuTorchExport)
def _executorch(art: Artifact, cfg: ExecuTorchExport, job: PassJob) -> Artifact:
    quant = cfg.quantize == "int8"
    job.ctx.begin(job.stage or "executorch-export", total=5 + (cfg.samples if quant else 0), message="capturing")
    job.ctx.step(message="capturing with torch.export")  # honours a cancel before the slow imports
    require_runtime("executorch", "executorch-export")
    module = float32_module(art.module, "executorch-export")
    sample = edge_sample(art, job, cfg.parity_samples)
    ep = capture(module, sample.args, "executorch-export", _WORKS)
    reference = module
    meta = {**art.meta, "exported_from": "torch", "precision": "fp32", "params": _params(module)}
    if quant:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )

        batches = calibration_args(job, art, cfg.samples, "executorch-export (quantize='int8')")
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=cfg.per_channel))
        try:
            reference = pt2e_quantize(ep.module(), quantizer, batches, job)
        except WorkbenchError:  # a cancel between calibration batches
            raise
        except Exception as e:
            raise conversion_error(e, "executorch-export", "quantizing (PT2E, XNNPACKQuantizer)", _WORKS) from None
        ep = capture(reference, sample.args, "executorch-export", _WORKS)
        meta.update(
            precision="int8-static",
            granularity="per-channel" if cfg.per_channel else "per-tensor",
            calibration="minmax (XNNPACKQuantizer observers)",
            calibration_samples=len(batches),
        )
    job.ctx.step(message="lowering to XNNPACK")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower

    try:
        with quiet_conversion():
            edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
            info = get_delegation_info(edge.exported_program().graph_module)
            program = edge.to_executorch()
    except Exception as e:
        raise conversion_error(
            e,
            "executorch-export",
            "lowering to ExecuTorch / XNNPACK",
            "Recipes that would work: litert-fp32 (LiteRT's converter has its own operator set) or the ONNX ones "
            "(ort-fp32, ort-int8-dynamic).",
        ) from None
    path = job.out_path("model.pte")
    path.write_bytes(program.buffer)
    out = edge_artifact(path, art.input_names, **meta)
    job.ctx.step(message="parity check")
    got = out.runner(job.threads)(sample.parity)
    if quant:
        ref = module_runner(reference, art.input_names)(sample.parity)
        diff = check_parity(
            ref, got, what="The ExecuTorch INT8 program", against="its quantized graph in PyTorch",
            n=sample.n, atol=cfg.atol, rtol=cfg.quant_rtol, fp32=art.runner(job.threads)(sample.parity),
        )  # fmt: skip
    else:
        ref = art.runner(job.threads)(sample.parity)
        diff = check_parity(ref, got, what="The ExecuTorch program", against="PyTorch", n=sample.n, atol=cfg.atol)
    lowered = {
        b.op_type: {"delegated": b.delegated, "not_delegated": b.non_delegated}
        for b in info.delegation_by_operator.values()
        if b.op_type not in _NOT_OPS
    }
    meta = {
        "parity_max_abs_diff": diff,
        "delegate": "XNNPACK",
        "delegated_subgraphs": info.num_delegated_subgraphs,
        "lowered_ops": lowered,
        "ops_outside_delegate": sorted(k for k, v in lowered.items() if v["not_delegated"]),
    }
    job.ctx.step(message=f"max abs diff {diff:.2g}; profiling")
    if cfg.profile_runs:
        from ..measure.delegation import executorch_delegation

        with job.ctx.timed():
            rep = executorch_delegation(
                path, art.input_names, job.model.bench_inputs(), threads=job.threads or 1, runs=cfg.profile_runs
            )
        meta["delegation"] = rep.to_dict()
    job.ctx.step(message="done")
    return out.with_meta(**meta)


def _params(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))
