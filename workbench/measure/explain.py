"""Why a candidate is not faster: named causes read from its graph and its kernel profile against the reference."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import WorkbenchError
from ..models.registry import LoadedModel
from ..store.candidate import Candidate
from .profile import CONV_LIKE, FLOAT_HEAVY, MATMUL_LIKE, QDQ_OPS, profile

__all__ = ["Finding", "Explanation", "why_no_speedup"]


# ---- why no speed-up? --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    kind: str  # float-ops | qdq | dynamic-quant | slow-kernels | sparsity | no-native-16bit | overhead | casts
    #          | delegate-fallback (edge formats: operators that left the XNNPACK delegate)
    message: str
    share: float | None = None  # share of kernel time concerned (or of weights, for sparsity)


@dataclass
class Explanation:
    candidate_id: str
    reference_id: str
    speedup: float | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def faster(self) -> bool:
        return self.speedup is not None and self.speedup > 1.05

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def __str__(self) -> str:
        sp = "unknown" if self.speedup is None else f"{self.speedup:.3g}x"
        head = f"Candidate {self.candidate_id} is {sp} the speed of {self.reference_id}" + (
            ": it is faster." if self.faster else ": no real speed-up. Why:"
        )
        body = [f"  - {f.message}" for f in self.findings] or [
            "  - nothing in the graph explains it; measure again on a quiet machine"
        ]
        return "\n".join([head, *body])


def _zero_share(path: str) -> tuple[float, int]:
    import onnx
    from onnx import numpy_helper

    from ..passes.selective import weight_layers

    m = onnx.load(path)
    inits = {i.name: i for i in m.graph.initializer}
    zeros = total = 0
    for lay in weight_layers(m, "prune"):
        w = numpy_helper.to_array(inits[lay["weight"]])
        if w.dtype.kind == "f":
            zeros += int((w == 0).sum())
            total += w.size
    return (zeros / total if total else 0.0), total


#: the edge runtimes and where an operator goes when it leaves the delegate
_EDGE = {"executorch": "ExecuTorch's own (portable) kernels", "litert": "LiteRT's builtin kernels"}
#: operator types of the delegate's quantize / dequantize steps (XNNPACK's Convert, LiteRT's QUANTIZE)
_EDGE_CONVERTS = ("Convert (NC)", "QUANTIZE", "DEQUANTIZE")
_EDGE_FAMILIES = (
    ("Conv", ("Convolution", "CONV_2D", "DEPTHWISE_CONV_2D")),
    ("MatMul/FC", ("Fully Connected", "FULLY_CONNECTED", "BATCH_MATMUL", "Batch Matrix")),
)


def _delegation_of(c: Candidate, model: LoadedModel | None, threads: int | None, runs: int):
    """The candidate's delegation report: recorded at export (notes), else measured now (needs the model)."""
    from .delegation import DelegationReport, delegation_report

    if (c.notes or {}).get("delegation"):
        return DelegationReport.from_dict(c.notes["delegation"])
    if model is None or not c.artifact_path:
        return None
    return delegation_report(
        c.artifact_path, model.baseline.input_names, model.bench_inputs(), threads=threads or c.threads or 1, runs=runs
    )


def _edge_findings(
    candidate: Candidate, reference: Candidate, model: LoadedModel | None, *, threads: int | None, runs: int
) -> list[Finding]:
    """Named causes from an ExecuTorch / LiteRT candidate's delegation report (and its reference's, same format)."""
    rep = _delegation_of(candidate, model, threads, runs)
    if rep is None:
        raise WorkbenchError(
            f"why_no_speedup needs the model (for its inputs) to profile {candidate.runtime} candidate {candidate.id}: "
            "it has no delegation report recorded."
        )
    out: list[Finding] = []
    fallback = rep.fallback
    if fallback:
        kinds = ", ".join(f"{g['op_type']} x{g['count']}" for g in rep.by_op_type() if not g["delegated"])
        out.append(
            Finding(
                "delegate-fallback",
                f"{len(fallback)} of {len(rep.rows)} operator(s) fell back out of the {rep.delegate} delegate to "
                f"{_EDGE[candidate.runtime]} and take {100 * rep.fallback_share:.0f}% of the time ({kinds}): "
                "the model is not fully delegated",
                rep.fallback_share,
            )
        )
    converts = [r for r in rep.rows if r["op_type"] in _EDGE_CONVERTS]
    share = sum(r["share"] for r in converts)
    if converts and share > 0.05:
        out.append(
            Finding(
                "qdq",
                f"{len(converts)} quantize/dequantize step(s) ({', '.join(sorted({r['op_type'] for r in converts}))}) "
                f"take {100 * share:.0f}% of the time: activations are converted between float and INT8 at the "
                "edges of the quantized region",
                share,
            )
        )
    notes = candidate.notes or {}
    if notes.get("precision") == "int8-dynamic":
        fc = [r for r in rep.rows if r["delegated"] and any(k in r["op_type"] for _, ks in _EDGE_FAMILIES for k in ks)]
        out.append(
            Finding(
                "dynamic-quant",
                "dynamic-range INT8: the activations of each of the "
                f"{len(fc)} delegated Conv/FullyConnected operator(s) are quantized again at every call "
                f"({100 * sum(r['share'] for r in fc):.0f}% of the time in those kernels); on small layers that "
                "costs about what the integer kernel saves",
                sum(r["share"] for r in fc) or None,
            )
        )
    if rep.overhead_share is not None and rep.overhead_share > 0.5:
        out.append(
            Finding(
                "overhead",
                f"kernels account for only {100 * (1 - rep.overhead_share):.0f}% of a {rep.run_ms:.3g} ms run: "
                "the runtime's fixed per-call cost dominates this small model",
                1 - rep.overhead_share,
            )
        )
    ref = _delegation_of(reference, None, threads, runs) if reference.runtime == candidate.runtime else None
    if ref is not None:
        for label, keys in _EDGE_FAMILIES:
            mine = [r for r in rep.rows if any(k in r["op_type"] for k in keys)]
            theirs = [r for r in ref.rows if any(k in r["op_type"] for k in keys)]
            t_new, t_ref = sum(r["time_us"] for r in mine), sum(r["time_us"] for r in theirs)
            if mine and t_ref > 0 and t_new > 1.1 * t_ref:
                kinds = ", ".join(sorted({r["op_type"] for r in mine}))
                out.append(
                    Finding(
                        "slow-kernels",
                        f"the {label} operators run as {kinds} and take {t_new:.0f} µs against {t_ref:.0f} µs in "
                        f"{reference.recipe_name}: {rep.delegate} has no faster kernel for them at this size on this CPU",
                        t_new / t_ref,
                    )
                )
    elif reference.runtime != candidate.runtime:
        out.append(
            Finding(
                "runtime",
                f"the reference runs on {reference.runtime}, this candidate on {candidate.runtime}: part of the "
                f"difference is the runtime itself; compare with the FP32 {candidate.runtime} candidate "
                f"({'executorch-fp32' if candidate.runtime == 'executorch' else 'litert-fp32'}) to see quantization's",
            )
        )
    return out


def _rows_of(prof, op_types) -> tuple[list[dict], float]:
    """The profile rows of these operator types, and their summed share of kernel time."""
    rows = [r for r in prof.rows if r["op_type"] in op_types]
    return rows, sum(r["share"] for r in rows)


def why_no_speedup(
    candidate: Candidate,
    reference: Candidate,
    model: LoadedModel | None = None,
    *,
    threads: int | None = None,
    runs: int = 20,
) -> Explanation:
    """Findings on why ``candidate`` is (or is not) faster than ``reference`` (e.g. the FP32 ONNX export).

    Always returns every finding; ``faster`` says whether an explanation was needed at all.
    """
    a, b = candidate.get("p50_ms"), reference.get("p50_ms")
    exp = Explanation(candidate.id, reference.id, (b / a) if a and b else None)
    notes = candidate.notes or {}
    if notes.get("native_hw") is False:
        exp.findings.append(
            Finding(
                "no-native-16bit",
                f"this CPU has no native {notes.get('precision')} arithmetic: "
                "the 16-bit weights are converted on the fly, so the model is smaller, not faster",
            )
        )
    if candidate.runtime in _EDGE:
        exp.findings.extend(_edge_findings(candidate, reference, model, threads=threads, runs=runs))
        return exp
    if candidate.runtime != "onnxruntime" or not candidate.artifact_path:
        return exp
    if model is None:
        raise WorkbenchError("why_no_speedup needs the model (for its inputs) to profile an ONNX candidate.")
    threads = threads or candidate.threads
    prof = profile(candidate.artifact_path, model.bench_inputs(), threads=threads, runs=runs)
    quantized = any(
        r["op_type"]
        in (
            "MatMulInteger",
            "ConvInteger",
            "QLinearMatMul",
            "QLinearConv",
            "MatMulNBits",
            "DynamicQuantizeMatMul",
            "MatMulIntegerToFloat",
            "QGemm",
            "QuantizeLinear",
        )
        for r in prof.rows
    )
    heavy, share = _rows_of(prof, FLOAT_HEAVY)
    if quantized and heavy:
        names = ", ".join(r["node"] for r in heavy[:3])
        exp.findings.append(
            Finding(
                "float-ops",
                f"{len(heavy)} compute op(s) were left in float and take "
                f"{100 * share:.0f}% of kernel time (e.g. {names})",
                share,
            )
        )
    qdq, share = _rows_of(prof, QDQ_OPS)
    if qdq:
        exp.findings.append(
            Finding(
                "qdq",
                f"{len(qdq)} QuantizeLinear/DequantizeLinear node(s) were not fused into "
                f"integer kernels and take {100 * share:.0f}% of kernel time",
                share,
            )
        )
    dq, share = _rows_of(prof, ("DynamicQuantizeLinear",))
    if dq:
        exp.findings.append(
            Finding(
                "dynamic-quant",
                f"activations are quantized at run time by {len(dq)} "
                f"DynamicQuantizeLinear node(s), {100 * share:.0f}% of kernel time: on small "
                "layers that costs more than the integer kernel saves",
                share,
            )
        )
    casts, share = _rows_of(prof, ("Cast",))
    if casts and share > 0.05:
        exp.findings.append(
            Finding(
                "casts",
                f"{len(casts)} Cast node(s) convert between precisions and take {100 * share:.0f}% of kernel time",
                share,
            )
        )
    skip_ln, share = _rows_of(prof, ("SkipLayerNormalization",))
    # named whenever the graph has it: the slowness is ORT 1.32's CPU kernel itself (~6x Add + LayerNorm,
    # measured on AVX-512), while the share it shows in one profile moves with the CPU and the machine's load
    if skip_ln:
        exp.findings.append(
            Finding(
                "slow-kernels",
                f"{len(skip_ln)} SkipLayerNormalization node(s) take {100 * share:.0f}% of kernel time: "
                "ONNX Runtime's CPU kernel for it is several times slower than Add + LayerNormalization; "
                "rebuild with OrtOptimize(skip_layernorm=False), the default, which keeps them apart",
                share,
            )
        )
    if reference.runtime == "onnxruntime" and reference.artifact_path:
        ref = profile(reference.artifact_path, model.bench_inputs(), threads=threads, runs=runs)
        for label, ops in (("Conv", CONV_LIKE), ("MatMul/Gemm", MATMUL_LIKE)):
            mine = [r for r in prof.rows if r["op_type"] in ops]
            t_new, t_ref = sum(r["time_us"] for r in mine), sum(r["time_us"] for r in ref.rows if r["op_type"] in ops)
            if mine and t_ref > 0 and t_new > 1.1 * t_ref:
                kinds = ", ".join(sorted({r["op_type"] for r in mine}))
                exp.findings.append(
                    Finding(
                        "slow-kernels",
                        f"the {label} layers now run as {kinds} and take {t_new:.0f} µs against "
                        f"{t_ref:.0f} µs in float: ORT has no faster kernel for them on this CPU (e.g. ConvInteger is a "
                        "reference implementation; static QDQ INT8 maps Conv to QLinearConv instead)",
                        t_new / t_ref,
                    )
                )
    zshare, n = _zero_share(candidate.artifact_path)
    if zshare >= 0.2:
        exp.findings.append(
            Finding(
                "sparsity",
                f"{100 * zshare:.0f}% of the {n} float weights are zero, but ORT's "
                "dense MatMul/Conv kernels multiply the zeros anyway: unstructured sparsity saves "
                "nothing without sparse kernels; prune whole channels/heads instead",
                zshare,
            )
        )
    if prof.wall_ms > 0 and prof.kernel_ms / prof.wall_ms < 0.5:
        exp.findings.append(
            Finding(
                "overhead",
                f"kernels account for only {100 * prof.kernel_ms / prof.wall_ms:.0f}% "
                f"of a {prof.wall_ms:.3g} ms run: fixed per-call overhead dominates this small "
                "model, so faster kernels barely show",
                prof.kernel_ms / prof.wall_ms,
            )
        )
    return exp
