"""Peak memory of an edge program (ExecuTorch ``.pte``, LiteRT ``.tflite``) measured like an ONNX model's: a fresh
process imports the runtime, then loads the program and runs it once; what counts is the resident-set peak reached
after the import (the high-water mark is reset once the runtime is loaded), i.e. the program plus its workspace."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping

import numpy as np

from ..core.artifact import Artifact

__all__ = ["edge_inference_memory"]

_PROBE = r"""
import json, sys
import numpy as np
kind, path, feed, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
names = [n for n in sys.argv[5].split(",") if n]
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
if kind == "executorch":
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime
    portable_lib._unsafe_reset_threadpool(threads)
    rt = Runtime.get()
else:
    from ai_edge_litert.interpreter import Interpreter
with np.load(feed) as z:
    arrays = [np.ascontiguousarray(z[n]) for n in names]
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # from here on the high-water mark is the program's, not the runtime import's
except OSError:
    pass
before = status("VmRSS:")
if kind == "executorch":
    method = rt.load_program(path).load_method("forward")
    method.execute([torch.from_numpy(a) for a in arrays])
else:
    it = Interpreter(model_path=path, num_threads=threads)
    it.allocate_tensors()
    sigs = it._get_full_signature_list()
    sig = sigs[next(iter(sigs))]["inputs"] if sigs else {}
    order = sorted(sig, key=lambda k: int(k.rsplit("_", 1)[-1]) if k.rsplit("_", 1)[-1].isdigit() else 1 << 30)
    details = {d["index"]: d for d in it.get_input_details()}
    for a, key in zip(arrays, order):
        d = details[sig[key]]
        scale, zero = d["quantization"]
        if np.dtype(d["dtype"]).kind in "iu" and scale and a.dtype.kind == "f":
            info = np.iinfo(d["dtype"])
            a = np.clip(np.round(a / scale) + zero, info.min, info.max)
        it.set_tensor(d["index"], np.ascontiguousarray(a.astype(d["dtype"])))
    it.invoke()
print(json.dumps(status("VmHWM:") - before))
"""


def edge_inference_memory(art: Artifact, inputs: Mapping[str, np.ndarray], threads: int) -> int | None:
    """Peak resident bytes a fresh process needs to load the program and run it once, beyond the runtime's own
    import. None where /proc is not available or the probe fails."""
    if not os.path.exists("/proc/self/status") or art.path is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        feed = os.path.join(d, "inputs.npz")
        np.savez(feed, **{k: np.ascontiguousarray(v[:1]) for k, v in inputs.items()})
        r = subprocess.run(
            [sys.executable, "-c", _PROBE, art.runtime, str(art.path), feed, str(threads), ",".join(art.input_names)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if r.returncode != 0:
        return None
    try:
        return int(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
