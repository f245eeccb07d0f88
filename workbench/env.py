"""Environment fingerprint: what a measurement depends on (CPU, ISA, libraries, threads)."""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata

__all__ = ["fingerprint", "cpu_flags", "cache_dir"]

_ISA = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "avx_vnni",
    "asimd",
    "sve",
    "i8mm",
    "bf16",
)
_LIBS = ("workbench", "torch", "onnxruntime", "onnx", "transformers", "optimum", "numpy", "scikit-learn")


@functools.cache
def cpu_flags() -> tuple[str, ...]:
    """The ISA flags that decide which INT8/BF16 kernels run (from /proc/cpuinfo; empty elsewhere)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return tuple(f for f in _ISA if f in have)
    return ()


@functools.cache
def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(threads: int | None = None) -> dict:
    """A JSON-able description of this machine and software, stored with every candidate."""
    return {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "isa": list(cpu_flags()),
        "threads": threads,
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "libraries": {n: v for n in _LIBS if (v := _version(n))},
    }


def cache_dir() -> os.PathLike[str]:
    """Where trained heads, small trained models and FP32 reference outputs are cached."""
    from pathlib import Path

    d = Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "workbench"))
    d.mkdir(parents=True, exist_ok=True)
    return d
