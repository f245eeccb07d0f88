"""This machine's roofline: peak float MatMul throughput and memory bandwidth, measured once and cached."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.artifact import ort_session
from ..core.env import cache_dir

__all__ = ["Machine", "machine_roofline", "ort_profile_session"]


@dataclass(frozen=True)
class Machine:
    """Measured peak compute (GFLOP/s, FP32) and memory bandwidth (GB/s) at ``threads``."""

    peak_gflops: float
    bandwidth_gbs: float
    threads: int

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP/byte) above which a kernel is compute-bound."""
        return self.peak_gflops / self.bandwidth_gbs


def ort_profile_session(path: str | Path, threads: int, profile_prefix: str | None = None, prepack: bool = True):
    # prepacked weights vanish from the profiler's input shapes: turn prepacking off to see them
    config = None if prepack else {"session.disable_prepacking": "1"}
    return ort_session(path, threads, config=config, profile_prefix=profile_prefix)


def _best_time(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def machine_roofline(threads: int | None = None, *, refresh: bool = False) -> Machine:
    """Measure (once per thread count, then cached) this machine's FP32 peak and memory bandwidth in ORT."""
    import onnx
    from onnx import TensorProto, helper

    threads = threads or (os.cpu_count() or 1)
    path = Path(cache_dir()) / f"roofline-{threads}t.json"
    if path.exists() and not refresh:
        return Machine(**json.loads(path.read_text()))
    with tempfile.TemporaryDirectory() as d:
        m, k, n = 512, 1024, 1024
        g = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])],
            "mm",
            [
                helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n]),
            ],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
        )
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), f"{d}/mm.onnx")
        s = ort_profile_session(f"{d}/mm.onnx", threads)
        a, b = np.random.rand(m, k).astype(np.float32), np.random.rand(k, n).astype(np.float32)
        peak = 2 * m * k * n / _best_time(lambda: s.run(None, {"a": a, "b": b}), 5) / 1e9
        size = 16 * 1024 * 1024  # 64 MB per operand: far beyond any cache
        g = helper.make_graph(
            [helper.make_node("Add", ["x", "y"], ["z"])],
            "add",
            [
                helper.make_tensor_value_info("x", TensorProto.FLOAT, [size]),
                helper.make_tensor_value_info("y", TensorProto.FLOAT, [size]),
            ],
            [helper.make_tensor_value_info("z", TensorProto.FLOAT, [size])],
        )
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), f"{d}/add.onnx")
        s = ort_profile_session(f"{d}/add.onnx", threads)
        x = np.random.rand(size).astype(np.float32)
        bw = 3 * 4 * size / _best_time(lambda: s.run(None, {"x": x, "y": x}), 5) / 1e9
    mach = Machine(round(peak, 2), round(bw, 2), threads)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(mach.__dict__))
    os.replace(tmp, path)
    return mach
