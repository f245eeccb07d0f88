"""Environment fingerprint: what a measurement depends on (CPU, ISA, libraries, threads)."""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata

__all__ = ["fingerprint", "cpu_flags", "cache_dir", "u8s8_saturates", "resolve_reduce_range", "int8_weight_note"]

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


#: x86 ISA extensions whose INT8 dot product (VPDPBUSD) accumulates u8 x s8 products straight into int32
_EXACT_INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8")
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")


def u8s8_saturates(flags: tuple[str, ...] | list[str] | None = None, machine: str | None = None) -> bool:
    """True where ONNX Runtime's u8 x s8 integer kernels can saturate: x86 without VNNI.

    There MLAS multiplies uint8 activations by int8 weights with VPMADDUBSW, which adds two adjacent
    products into an int16 with saturation: 255 * 127 * 2 = 64770 does not fit in 32767, so a
    full-range INT8 model computes something else than its own QDQ graph says (measured on an AVX2
    EPYC: a MatMulInteger of random full-range operands was wrong in 99 % of its outputs). 7-bit
    weights (|w| <= 64: 255 * 64 * 2 = 32640) run exactly. VNNI's VPDPBUSD and ARM's dot products
    accumulate in int32 and never saturate. ``flags``/``machine`` default to this machine's.
    """
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine not in _X86:
        return False
    have = set(cpu_flags() if flags is None else flags)
    return not have.intersection(_EXACT_INT8_DOT)


def resolve_reduce_range(value: bool | str, flags=None, machine=None) -> bool:
    """A pass's ``reduce_range`` setting as used here: ``"auto"`` means 7-bit weights where u8s8 saturates."""
    if value == "auto":
        return u8s8_saturates(flags, machine)
    return bool(value)


def int8_weight_note(reduce_range: bool) -> str:
    """What the chosen INT8 weight range means on this CPU, recorded with the candidate."""
    if reduce_range:
        return (
            "7-bit weights (reduce_range): this CPU has no VNNI, and ONNX Runtime's u8s8 kernels "
            "(VPMADDUBSW) saturate with full-range int8 weights"
        )
    if u8s8_saturates():
        return "full-range int8 weights on a CPU without VNNI: u8s8 kernels may saturate (reduce_range was off)"
    return "full-range int8 weights: this CPU's INT8 dot product accumulates in int32 exactly"


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
        # decides the INT8 weight range (reduce_range="auto") and so which artifact a recipe makes here
        "u8s8_saturates": u8s8_saturates(),
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
