"""What this CPU makes of each precision: notes for recipes, panel options, the default set and the report.

The same recipe is a win on one CPU and a loss on another. BF16 is fast only where the CPU multiplies BF16 natively
(x86 ``avx512_bf16`` or AMX, ARM ``bf16``); elsewhere PyTorch converts every operand and BF16 runs slower than FP32
(measured on an AVX2-only EPYC: about 3x slower on MiniLM). FP16 likewise needs ``avx512_fp16`` (x86) or ARM's
FP16 arithmetic (``asimdhp``/``fphp``). INT8 gains most where the dot product is one instruction (VNNI, AMX, ARM's
``asimddp``/``i8mm``); without VNNI, ONNX Runtime's u8s8 kernels saturate with full-range weights, so INT8 passes
use 7-bit weights there (``reduce_range="auto"``, ``core.env.u8s8_saturates``; its accuracy effect is measured by
``bench/bench_int8_range.py``).

Every function takes ``flags`` / ``machine`` (default: this machine's, from ``core.env``), so a stored
fingerprint or a device's can be judged too.

>>> slower_here(get_recipe("bf16"), flags=("avx2", "fma"), machine="x86_64")
'slower than FP32 here: this CPU has no native BF16 arithmetic (no avx512_bf16, no AMX), so PyTorch converts every operand'
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.env import cpu_flags, u8s8_saturates
from .registry import Recipe, get_recipe

__all__ = [
    "Advice",
    "cpu_features",
    "cpu_summary",
    "recipe_advice",
    "slower_here",
    "precision_note",
    "default_recipes_here",
]

_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_INT8_KINDS = ("dynamic-int8", "static-int8", "qat", "torch-dynamic-int8")


@dataclass(frozen=True)
class Advice:
    #: "slower": known to run slower than FP32 on this CPU (left out of the default set); "gain": smaller gains
    #: than on other CPUs; "fine": this CPU has what it needs
    level: str
    text: str


def _ctx(flags: Sequence[str] | None, machine: str | None) -> tuple[set[str], str]:
    have = set(cpu_flags() if flags is None else flags)
    m = (machine if machine is not None else platform.machine()).lower()
    return have, m


def cpu_features(flags: Sequence[str] | None = None, machine: str | None = None) -> dict[str, bool | str]:
    """The features the precisions depend on, as booleans (for the report and the panels)."""
    have, m = _ctx(flags, machine)
    x86 = m in _X86
    return {
        "machine": m,
        "int8_dot": bool(have & {"avx512_vnni", "avx_vnni", "amx_int8"}) if x86 else bool(have & {"asimddp", "i8mm"}),
        "bf16": bool(have & {"avx512_bf16", "amx_bf16"}) if x86 else "bf16" in have,
        "fp16": "avx512_fp16" in have if x86 else bool(have & {"asimdhp", "fphp"}),
        "u8s8_saturates": u8s8_saturates(tuple(have), m),
    }


def cpu_summary(flags: Sequence[str] | None = None, machine: str | None = None) -> str:
    """One sentence on what this CPU means for the precisions, e.g. for the report beside the results."""
    have, m = _ctx(flags, machine)
    f = cpu_features(tuple(have), m)
    listed = ", ".join(sorted(have)) or "none read"
    parts = [
        "INT8 dot product in one instruction" if f["int8_dot"] else "no VNNI: INT8 uses 7-bit weights, smaller gains",
        "native BF16" if f["bf16"] else "no native BF16 (slower than FP32 here)",
        "native FP16" if f["fp16"] else "no native FP16 (slower than FP32 here)",
    ]
    return f"{m}, ISA features {listed}: " + "; ".join(parts) + "."


def _dtypes(recipe: Recipe) -> set[str]:
    return {str(getattr(s, "dtype", "")) for s in recipe.steps if s.kind == "cast"}


def recipe_advice(recipe: Recipe | str, flags: Sequence[str] | None = None, machine: str | None = None) -> list[Advice]:
    """What this CPU means for ``recipe``: a list of notes (empty when it has nothing to say)."""
    r = get_recipe(recipe)
    have, m = _ctx(flags, machine)
    f = cpu_features(tuple(have), m)
    x86 = m in _X86
    out: list[Advice] = []
    dtypes = _dtypes(r)
    if "bf16" in dtypes:
        if f["bf16"]:
            out.append(Advice("fine", "native BF16 here (avx512_bf16 / AMX / ARM bf16)"))
        else:
            what = "no avx512_bf16, no AMX" if x86 else "no bf16 extension"
            out.append(
                Advice(
                    "slower",
                    f"slower than FP32 here: this CPU has no native BF16 arithmetic ({what}), so PyTorch converts "
                    "every operand",
                )
            )
    if "fp16" in dtypes:
        if f["fp16"]:
            out.append(Advice("fine", "native FP16 here"))
        else:
            what = "no avx512_fp16" if x86 else "no asimdhp"
            out.append(
                Advice(
                    "slower",
                    f"slower than FP32 here: this CPU has no native FP16 arithmetic ({what}); it only halves the size",
                )
            )
    if any(s.kind in _INT8_KINDS for s in r.steps):
        if f["int8_dot"]:
            out.append(Advice("fine", "INT8 dot product in one instruction here (VNNI / AMX / ARM dot product)"))
        elif x86:
            out.append(
                Advice(
                    "gain",
                    "smaller INT8 gains here: no VNNI, so ONNX Runtime multiplies with VPMADDUBSW, whose u8 x s8 "
                    "sums saturate; weights are 7-bit (reduce_range) to stay exact",
                )
            )
        else:
            out.append(Advice("gain", "smaller INT8 gains here: no ARM dot-product instructions (asimddp / i8mm)"))
    return out


def slower_here(recipe: Recipe | str, flags: Sequence[str] | None = None, machine: str | None = None) -> str | None:
    """Why ``recipe`` is known to run slower than FP32 on this CPU, or None."""
    for a in recipe_advice(recipe, flags, machine):
        if a.level == "slower":
            return a.text
    return None


def precision_note(precision: str, flags: Sequence[str] | None = None, machine: str | None = None) -> str | None:
    """A note for a precision option of the quantization panel (``bf16``, ``fp16``, ``int8-dynamic``, ...)."""
    name = {"bf16": "bf16", "fp16": "fp16", "int8-dynamic": "ort-int8-dynamic", "int8-static": "ort-int8-static"}
    if precision not in name:
        return None
    notes = [a for a in recipe_advice(name[precision], flags, machine) if a.level != "fine"]
    return notes[0].text if notes else None


def default_recipes_here(
    names: Iterable[str], flags: Sequence[str] | None = None, machine: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The default recipe set for this CPU: ``(kept, skipped)``, ``skipped`` naming why each was left out (known to
    be slower than FP32 here). A recipe asked for by name is never skipped: this applies to defaults only."""
    kept, skipped = [], {}
    for n in names:
        why = slower_here(n, flags, machine)
        if why:
            skipped[n] = why
        else:
            kept.append(n)
    return kept, skipped
