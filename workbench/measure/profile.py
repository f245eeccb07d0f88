"""Profile first: where the time and the bytes go, layer by layer, against this machine's roofline.

- :func:`profile` runs an ONNX model under ONNX Runtime's profiler (the graph as ORT runs it, after its
  fusions) and returns one row per node: time, share, weight bytes, FLOPs, bytes moved, arithmetic
  intensity, and whether the node is memory- or compute-bound on this machine.
- :func:`machine_roofline` measures this machine's peak compute (a large FP32 MatMul in ORT) and
  memory bandwidth (a large elementwise Add in ORT) at a thread count; cached per thread count.
- :func:`why_no_speedup` explains a candidate that is not faster than its float reference: ops left
  in float, unfused Quantize/Dequantize pairs, activations quantized at run time, sparsity that dense
  kernels ignore, missing native 16-bit arithmetic, and fixed overhead that kernels cannot shrink.

>>> prof = profile_model(load_model("digits-cnn"), threads=2)   # doctest: +SKIP
>>> prof.frame[["node", "op_type", "share", "bound"]]          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.config import check_range
from ..core.context import RunContext
from ..core.errors import ModelLoadError, WorkbenchError
from ..models.registry import LoadedModel
from ..store.candidate import Candidate
from .roofline import Machine, machine_roofline, ort_profile_session

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

__all__ = [
    "Machine",
    "machine_roofline",
    "Profile",
    "profile",
    "profile_model",
    "MATMUL_LIKE",
    "CONV_LIKE",
    "FLOAT_HEAVY",
    "QDQ_OPS",
    "roofline_chart",
]

MATMUL_LIKE = {
    "MatMul",
    "Gemm",
    "FusedMatMul",
    "FusedGemm",
    "MatMulInteger",
    "QLinearMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "QGemm",
    "MatMulNBits",
}
CONV_LIKE = {"Conv", "FusedConv", "ConvInteger", "QLinearConv", "NhwcFusedConv"}
#: heavy ops that still compute in float after a quantization pass
FLOAT_HEAVY = {
    "MatMul",
    "Gemm",
    "FusedMatMul",
    "FusedGemm",
    "Conv",
    "FusedConv",
    "Attention",
    "MultiHeadAttention",
    "NhwcFusedConv",
}
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


_ITEMSIZE = {
    "float": 4,
    "float16": 2,
    "bfloat16": 2,
    "double": 8,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "bool": 1,
}


def _shapes(arg: list) -> list[list[int]]:
    out = []
    for d in arg or []:
        (dims,) = d.values() if d else ([],)
        out.append([int(x) for x in dims])
    return out


def _nbytes(arg: list) -> int:
    """Bytes of the tensors ORT lists for a node (prepacked weights included, unlike its parameter_size)."""
    n = 0
    for d in arg or []:
        for typ, dims in d.items():
            n += int(np.prod(dims)) * _ITEMSIZE.get(typ, 4) if dims else _ITEMSIZE.get(typ, 4)
    return n


def _flops(op: str, ins: list[list[int]], outs: list[list[int]]) -> float:
    out_n = float(np.prod(outs[0])) if outs and outs[0] else 0.0
    if op in MATMUL_LIKE and ins and ins[0]:
        return 2.0 * out_n * ins[0][-1]
    if op in CONV_LIKE and len(ins) > 1 and len(ins[1]) >= 3:
        return 2.0 * out_n * float(np.prod(ins[1][1:]))
    return out_n  # elementwise and data movement: about one operation per output value


@dataclass
class Profile:
    """Per-node profile of one ONNX model. ``frame`` has one row per node of the graph ORT runs."""

    path: str
    machine: Machine
    rows: list[dict[str, Any]]
    runs: int
    wall_ms: float  # median wall time of a profiled run, overhead included

    @property
    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records(self.rows)

    @property
    def kernel_ms(self) -> float:
        return sum(r["time_us"] for r in self.rows) / 1e3

    def by_op(self) -> list[dict[str, Any]]:
        agg: dict[str, dict[str, Any]] = {}
        for r in self.rows:
            a = agg.setdefault(r["op_type"], {"op_type": r["op_type"], "nodes": 0, "time_us": 0.0, "param_bytes": 0})
            a["nodes"] += 1
            a["time_us"] += r["time_us"]
            a["param_bytes"] += r["param_bytes"]
        total = sum(a["time_us"] for a in agg.values()) or 1.0
        for a in agg.values():
            a["share"] = a["time_us"] / total
        return sorted(agg.values(), key=lambda a: -a["time_us"])

    def share(self, ops: set[str]) -> float:
        total = sum(r["time_us"] for r in self.rows) or 1.0
        return sum(r["time_us"] for r in self.rows if r["op_type"] in ops) / total

    def chart(self) -> alt.LayerChart:
        return roofline_chart(self)


def profile(
    path: str | Path,
    inputs: Mapping[str, np.ndarray],
    *,
    threads: int | None = None,
    runs: int = 20,
    machine: Machine | None = None,
) -> Profile:
    """Profile the ONNX model at ``path`` on ``inputs`` (batch 1 for latency questions)."""
    check_range("profile", "runs", runs, 1, 10_000, integer=True)
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"profile needs an ONNX file; there is none at {path}.")
    threads = threads or (os.cpu_count() or 1)
    machine = machine or machine_roofline(threads)
    with tempfile.TemporaryDirectory() as d:
        # one run without weight prepacking gives every node's full input shapes (weights included) ...
        s = ort_profile_session(path, threads, profile_prefix=f"{d}/shapes", prepack=False)
        s.run(None, _feed(s, inputs))
        shapes = {e["name"]: e.get("args", {}) for e in _node_events(s.end_profiling())}
        # ... and the timed runs use the session as it normally runs
        s = ort_profile_session(path, threads, profile_prefix=f"{d}/prof")
        feed = _feed(s, inputs)
        for _ in range(3):  # warm-up (allocations, kernel choice) before the profiled runs count
            s.run(None, feed)
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            s.run(None, feed)
            walls.append((time.perf_counter() - t0) * 1e3)
        events = _node_events(s.end_profiling())
    per: dict[str, dict[str, Any]] = {}
    for e in events:
        a = {
            **e.get("args", {}),
            **{
                k: v
                for k, v in shapes.get(e["name"], {}).items()
                if k in ("input_type_shape", "output_type_shape", "activation_size")
            },
        }
        name = e["name"][: -len("_kernel_time")]
        ins, outs = a.get("input_type_shape"), a.get("output_type_shape")
        r = per.setdefault(
            name,
            {
                "node": name,
                "op_type": a.get("op_name", "?"),
                "durs": [],
                "param_bytes": max(0, _nbytes(ins) - int(a.get("activation_size", 0))),
                "bytes": _nbytes(ins) + _nbytes(outs),
                "flops": _flops(a.get("op_name", ""), _shapes(ins), _shapes(outs)),
            },
        )
        r["durs"].append(float(e.get("dur", 0)))
    rows = []
    warm_calls = 3
    for r in per.values():
        durs = r.pop("durs")[warm_calls:] or [0.0]  # the first runs are warm-up
        t = float(np.median(durs))
        ai = r["flops"] / r["bytes"] if r["bytes"] else 0.0
        attainable = min(machine.peak_gflops, ai * machine.bandwidth_gbs)
        rows.append(
            {
                **r,
                "time_us": t,
                "intensity": ai,
                "attainable_gflops": attainable,
                "achieved_gflops": r["flops"] / (t * 1e3) if t else 0.0,
                "bound": "compute-bound" if ai >= machine.ridge else "memory-bound",
            }
        )
    total = sum(r["time_us"] for r in rows) or 1.0
    for r in rows:
        r["share"] = r["time_us"] / total
    rows.sort(key=lambda r: -r["time_us"])
    return Profile(str(path), machine, rows, runs, float(np.median(walls)))


def _node_events(trace_path: str) -> list[dict]:
    events = json.loads(Path(trace_path).read_text())
    Path(trace_path).unlink(missing_ok=True)
    return [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]


def _feed(sess, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    types = {
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(bool)": np.bool_,
    }
    feed = {}
    for i in sess.get_inputs():
        if i.name not in inputs:
            raise WorkbenchError(
                f"profile: the model needs input {i.name!r}; the inputs given are {', '.join(inputs) or '(none)'}."
            )
        dt = types.get(i.type)
        feed[i.name] = np.ascontiguousarray(inputs[i.name] if dt is None else inputs[i.name].astype(dt))
    return feed


def profile_model(
    model: LoadedModel,
    candidate: Candidate | None = None,
    *,
    threads: int | None = None,
    runs: int = 20,
    ctx: RunContext | None = None,
) -> Profile:
    """Profile the model's baseline (exported to ONNX when it is a PyTorch model) or an ONNX candidate. ``ctx``
    hears of the export and the profiled runs (progress lines in the CLI)."""
    inputs = model.bench_inputs()
    ctx = ctx or RunContext()
    ctx.begin(f"{model.name} / profile", total=2, message="ONNX Runtime's per-node profile")
    if candidate is not None:
        if candidate.runtime != "onnxruntime" or not candidate.artifact_path:
            raise WorkbenchError(
                f"Candidate {candidate.id} ({candidate.recipe_name}) is a {candidate.runtime} model: "
                "profile works on ONNX candidates; profile its ONNX sibling instead."
            )
        return profile(candidate.artifact_path, inputs, threads=threads, runs=runs)
    if model.baseline.kind == "onnx":
        return profile(model.baseline.path, inputs, threads=threads, runs=runs)
    from ..passes import OnnxExport, PassJob, apply_pass

    with tempfile.TemporaryDirectory() as d:
        art = apply_pass(model.baseline, OnnxExport(), PassJob(model=model, ctx=ctx, workdir=Path(d), threads=threads))
        ctx.begin(f"{model.name} / profile", total=2, message="exported; profiling")
        ctx.step()
        return profile(art.path, inputs, threads=threads, runs=runs)


def roofline_chart(prof: Profile) -> alt.LayerChart:
    """Log-log roofline: each node at (arithmetic intensity, achieved GFLOP/s), with the machine's roof."""
    import altair as alt

    m = prof.machine
    pts = [
        {k: r[k] for k in ("node", "op_type", "intensity", "achieved_gflops", "time_us", "bound", "share")}
        for r in prof.rows
        if r["intensity"] > 0 and r["achieved_gflops"] > 0
    ]
    lo = min([p["intensity"] for p in pts] + [m.ridge / 100])
    hi = max([p["intensity"] for p in pts] + [m.ridge * 10])
    roof = [{"intensity": x, "gflops": min(m.peak_gflops, x * m.bandwidth_gbs)} for x in (lo, m.ridge, hi)]
    line = (
        alt.Chart(alt.Data(values=roof))
        .mark_line(color="#333")
        .encode(
            x=alt.X("intensity:Q", scale=alt.Scale(type="log"), title="arithmetic intensity (FLOP/byte)"),
            y=alt.Y("gflops:Q", scale=alt.Scale(type="log"), title="GFLOP/s"),
        )
    )
    dots = (
        alt.Chart(alt.Data(values=pts))
        .mark_circle()
        .encode(
            x="intensity:Q",
            y="achieved_gflops:Q",
            size=alt.Size("time_us:Q", title="time (µs)"),
            color=alt.Color("bound:N", title="bound"),
            tooltip=["node:N", "op_type:N", "time_us:Q", "intensity:Q", "achieved_gflops:Q", "bound:N"],
        )
    )
    return (line + dots).properties(
        title=f"Roofline: peak {m.peak_gflops:g} GFLOP/s, {m.bandwidth_gbs:g} GB/s, {m.threads} threads",
        width=420,
        height=260,
    )
