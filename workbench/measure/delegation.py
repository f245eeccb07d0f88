"""Delegation report of an edge program: which operators ran inside the CPU delegate (XNNPACK) and which fell back
to the runtime's own kernels, with each one's share of the time, measured here with the format's own runtime.

- ExecuTorch (``.pte``): the program runs with ETDump on; ``executorch.devtools.Inspector`` reads back one event per
  kernel. Events inside ``DELEGATE_CALL`` are XNNPACK's (``Convolution (NHWC, QC8) IGEMM #1``); an operator that left
  the delegate appears as an ExecuTorch kernel call of its own (``native_call_cumsum.out``).
- LiteRT (``.tflite``): the interpreter is opened with delegate node fusion off, so every operator XNNPACK takes
  becomes a delegate node of its own, matched to the model's operator by its output tensor; operators with no delegate
  node fell back to LiteRT's builtin kernels (``fully_delegated`` is False then, as LiteRT's
  ``CompiledModel.is_fully_accelerated()`` says). LiteRT's Python API has no op profiler, so each operator is timed
  alone: a one-operator model cut from the file, fed the values it sees in the real run, on the kernel it runs on in
  the whole model; the shares are of the summed operator times.

>>> rep = delegation_report("model.tflite", ("pixels",), inputs, threads=1)   # doctest: +SKIP
>>> print(rep.summary())                                                   # doctest: +SKIP
LiteRT: 7 of 8 operators in XNNPACK (93% of operator time); fell back: DEPTHWISE_CONV_2D (7%)
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError

__all__ = ["DelegationReport", "delegation_report", "executorch_delegation", "litert_delegation"]

#: runtime events that are not kernels
_ET_FRAME = {"Method::execute", "Method::init", "Program::load_method", "DELEGATE_CALL", "OPERATOR_CALL"}


@dataclass(frozen=True)
class DelegationReport:
    """One row per operator (``op``, ``op_type``, ``delegated``, ``time_us``, ``share``), plus run facts."""

    format: str  # "executorch" | "litert"
    delegate: str
    threads: int
    run_ms: float  # p50 of one whole run
    rows: tuple[dict[str, Any], ...] = ()
    #: share of the run outside the kernels (framework, delegate calls); None where it cannot be measured
    overhead_share: float | None = None
    how: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def fallback(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["delegated"]]

    @property
    def fully_delegated(self) -> bool:
        return bool(self.rows) and not self.fallback

    @property
    def delegated_share(self) -> float:
        return float(sum(r["share"] for r in self.rows if r["delegated"]))

    @property
    def fallback_share(self) -> float:
        return float(sum(r["share"] for r in self.fallback))

    def by_op_type(self) -> list[dict[str, Any]]:
        """Rows summed per (operator type, delegated): count, time, share; largest share first."""
        groups: dict[tuple[str, bool], dict[str, Any]] = {}
        for r in self.rows:
            g = groups.setdefault(
                (r["op_type"], r["delegated"]),
                {"op_type": r["op_type"], "delegated": r["delegated"], "count": 0, "time_us": 0.0, "share": 0.0},
            )
            g["count"] += 1
            g["time_us"] += r["time_us"]
            g["share"] += r["share"]
        return sorted(groups.values(), key=lambda g: -g["share"])

    def summary(self) -> str:
        name = {"executorch": "ExecuTorch", "litert": "LiteRT"}.get(self.format, self.format)
        n_in = sum(1 for r in self.rows if r["delegated"])
        # ExecuTorch's shares are of the whole run (its own per-call work is the rest); LiteRT's of the operators'
        of = "of operator time" if self.overhead_share is None else "of the run; the rest is the runtime's own work"
        head = (
            f"{name}: {n_in} of {len(self.rows)} operators in {self.delegate} ({100 * self.delegated_share:.0f}% {of})"
        )
        if not self.fallback:
            return head + "; fully delegated"
        out = [
            f"{g['op_type']} x{g['count']} ({100 * g['share']:.0f}%)" for g in self.by_op_type() if not g["delegated"]
        ]
        return head + "; fell back: " + ", ".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "delegate": self.delegate,
            "threads": self.threads,
            "run_ms": self.run_ms,
            "rows": [dict(r) for r in self.rows],
            "overhead_share": self.overhead_share,
            "fully_delegated": self.fully_delegated,
            "delegated_share": self.delegated_share,
            "fallback_share": self.fallback_share,
            "fallback_ops": sorted({r["op_type"] for r in self.fallback}),
            "how": self.how,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DelegationReport:
        return cls(
            format=str(d["format"]),
            delegate=str(d.get("delegate", "XNNPACK")),
            threads=int(d.get("threads") or 1),
            run_ms=float(d.get("run_ms") or 0.0),
            rows=tuple(dict(r) for r in d.get("rows", ())),
            overhead_share=d.get("overhead_share"),
            how=str(d.get("how", "")),
            notes=tuple(d.get("notes", ())),
        )


def delegation_report(
    path: str | Path,
    input_names: tuple[str, ...],
    inputs: Mapping[str, np.ndarray],
    *,
    threads: int = 1,
    runs: int = 20,
) -> DelegationReport:
    """The delegation report of a ``.pte`` or ``.tflite`` file on batch-1 ``inputs``."""
    p = Path(path)
    if p.suffix == ".pte":
        return executorch_delegation(p, input_names, inputs, threads=threads, runs=runs)
    if p.suffix == ".tflite":
        return litert_delegation(p, input_names, inputs, threads=threads, runs=runs)
    raise WorkbenchError(f"delegation_report reads .pte (ExecuTorch) or .tflite (LiteRT) files; got {p.name!r}.")


# ---- ExecuTorch: ETDump + Inspector ---------------------------------------------------------------------------
def _et_op_type(name: str, delegated: bool) -> str:
    if delegated:
        return re.sub(r"\s*#\d+$", "", name)  # "Convolution (NHWC, F32) IGEMM #2" -> one type per kernel kind
    return re.sub(r"^native_call_", "", name)


def executorch_delegation(
    path: Path, input_names: tuple[str, ...], inputs: Mapping[str, np.ndarray], *, threads: int = 1, runs: int = 20
) -> DelegationReport:
    from ..core.edge_runtime import executorch_runner, load_executorch_method

    program, method = load_executorch_method(path, etdump=True)
    run = executorch_runner(path, input_names, threads, method=method)
    for _ in range(max(1, runs)):
        run(inputs)
    from executorch.devtools import Inspector

    with tempfile.TemporaryDirectory() as d:
        dump = Path(d) / "run.etdp"
        program.write_etdump_result_to_file(str(dump), str(Path(d) / "debug.bin"))
        if not dump.exists() or dump.stat().st_size == 0:
            raise WorkbenchError(
                "This ExecuTorch build wrote no ETDump (it needs EXECUTORCH_ENABLE_EVENT_TRACER): no per-kernel profile."
            )
        import logging

        logging.disable(logging.WARNING)  # the Inspector warns when no ETRecord maps events back to the graph
        try:
            inspector = Inspector(etdump_path=str(dump))
        finally:
            logging.disable(logging.NOTSET)
    rows, run_ms = [], 0.0
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for ev in block.events:
            p50 = float(ev.perf_data.p50) if ev.perf_data is not None else 0.0  # ms
            if ev.name == "Method::execute":
                run_ms = max(run_ms, p50)
            if ev.name in _ET_FRAME:
                continue
            delegated = bool(ev.is_delegated_op)
            rows.append(
                {
                    "op": ev.name,
                    "op_type": _et_op_type(ev.name, delegated),
                    "delegated": delegated,
                    "time_us": 1e3 * p50,
                }
            )
    total_us = 1e3 * run_ms
    kernels = sum(r["time_us"] for r in rows)
    for r in rows:
        r["share"] = r["time_us"] / total_us if total_us > 0 else 0.0
    return DelegationReport(
        "executorch",
        "XNNPACK",
        int(threads),
        run_ms,
        tuple(rows),
        overhead_share=max(0.0, 1 - kernels / total_us) if total_us > 0 else None,
        how=f"ETDump of {max(1, runs)} runs read by executorch.devtools.Inspector (p50 per kernel); shares of the run",
    )


# ---- LiteRT: delegate map + one-operator models -------------------------------------------------------------------
def _short_tensor_name(name: bytes | str) -> str:
    s = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    s = s.split(";")[0]
    return s.rsplit("/", 1)[-1][-60:] or s[-60:]


def _delegated_ops(path: Path, threads: int, n_ops: int) -> set[int]:
    """Indices of the operators XNNPACK took: with node fusion off each becomes a delegate node of its own, whose
    outputs are that operator's outputs."""
    from ..core.edge_runtime import make_interpreter

    it = make_interpreter(path, threads, experimental_disable_delegate_node_fusion=True)
    w = it._interpreter
    producer = {}
    for k in range(n_ops):
        for t in w.NodeOutputs(k):
            producer[int(t)] = k
    out = set()
    for k in range(n_ops, w.NumNodes()):
        if w.NodeName(k) == "DELEGATE":
            out.update(producer[int(t)] for t in w.NodeOutputs(k) if int(t) in producer)
    return out


def _single_op_model(model, op_index: int) -> tuple[bytes, list[int]]:
    """A one-operator model cut from ``model`` (a ``ModelT``): the operator, its tensors, only its constant buffers.
    Returns the flatbuffer and, for each model input, the original tensor index it reads."""
    import copy as _copy

    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    sg = model.subgraphs[0]
    op = sg.operators[op_index]
    used = [t for t in list(op.inputs) + list(op.outputs) if t >= 0]
    remap: dict[int, int] = {}
    tensors, buffers = [], [schema.BufferT()]
    inputs = []
    for t in used:
        if t in remap:
            continue
        tensor = _copy.copy(sg.tensors[t])
        buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
        const = buf is not None and (buf.data is not None and len(buf.data) > 0)
        if const:
            buffers.append(buf)
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
            if t in op.inputs:
                inputs.append(t)
        remap[t] = len(tensors)
        tensors.append(tensor)
    new_op = _copy.copy(op)
    new_op.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
    new_op.outputs = [remap[t] for t in op.outputs]
    new_op.intermediates = None
    sub = schema.SubGraphT()
    sub.tensors, sub.operators = tensors, [new_op]
    sub.inputs = [remap[t] for t in inputs]
    sub.outputs = list(new_op.outputs)
    sub.name = sg.name
    m = schema.ModelT()
    m.version, m.description = model.version, model.description
    m.operatorCodes, m.subgraphs, m.buffers = model.operatorCodes, [sub], buffers
    m.signatureDefs = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(m)), inputs


def _time_invoke(it, runs: int) -> float:
    for _ in range(3):
        it.invoke()
    samples = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        it.invoke()
        samples.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(samples)


def litert_delegation(
    path: Path, input_names: tuple[str, ...], inputs: Mapping[str, np.ndarray], *, threads: int = 1, runs: int = 20
) -> DelegationReport:
    from ai_edge_litert.interpreter import OpResolverType
    from ai_edge_litert.tools import flatbuffer_utils

    from ..core.edge_runtime import litert_runner, make_interpreter, quantize_input

    path = Path(path)
    model = flatbuffer_utils.read_model(str(path))
    if len(model.subgraphs) != 1:
        notes = (f"the model has {len(model.subgraphs)} subgraphs; operators of the first one are profiled",)
    else:
        notes = ()
    sg = model.subgraphs[0]
    n_ops = len(sg.operators)
    delegated = _delegated_ops(path, threads, n_ops)
    # the whole model, as measured: the default interpreter (XNNPACK on)
    run = litert_runner(path, input_names, threads)
    run(inputs)
    run_us = _time_invoke(run.interpreter, runs)
    # every tensor's value in a real run (no delegate: the interpreter keeps intermediates only without one)
    with warnings.catch_warnings():  # "for debugging purposes only": it is, here (one run, to read intermediates)
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        full = make_interpreter(path, threads, experimental_preserve_all_tensors=True)
    from ..core.edge_runtime import litert_signature

    ins, _ = litert_signature(full)
    for name, d in zip(input_names, ins):
        full.set_tensor(d["index"], np.ascontiguousarray(quantize_input(inputs[name], d["dtype"], d["quantization"])))
    full.invoke()
    rows = []
    for k, op in enumerate(sg.operators):
        op_type = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) or f"op{op.opcodeIndex}"
        name = _short_tensor_name(sg.tensors[op.outputs[0]].name) if len(op.outputs) else op_type
        row = {"op": f"{op_type} {name}", "op_type": op_type, "delegated": k in delegated, "time_us": 0.0}
        try:
            content, feeds = _single_op_model(model, k)
            options = (
                {}
                if k in delegated
                else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
            )
            one = make_interpreter(None, threads, content=content, **options)
            for d, t in zip(one.get_input_details(), feeds):
                one.set_tensor(d["index"], full.get_tensor(t))
            row["time_us"] = _time_invoke(one, runs)
        except Exception as e:  # an operator that cannot stand alone (control flow, variables): no time for it
            row["untimed"] = f"{type(e).__name__}: {str(e)[:120]}"
        rows.append(row)
    total = sum(r["time_us"] for r in rows)
    for r in rows:
        r["share"] = r["time_us"] / total if total > 0 else 0.0
    untimed = [r["op"] for r in rows if "untimed" in r]
    if untimed:
        notes += (f"{len(untimed)} operator(s) could not be timed alone: {', '.join(untimed[:3])}",)
    return DelegationReport(
        "litert",
        "XNNPACK",
        int(threads),
        run_us / 1e3,
        tuple(rows),
        overhead_share=None,
        how=(
            f"delegate map from the interpreter with node fusion off; each operator timed alone ({max(1, runs)} runs, "
            "median) on the kernel it runs on in the model; shares of the summed operator times"
        ),
        notes=notes,
    )
