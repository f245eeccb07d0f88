"""Panel settings -> a Recipe of registered passes. The one place that knows which passes a setting means.

The steps for a precision match the shipped recipes (``ort-int8-dynamic``, ``ort-int8-static``, ``bf16``...)
so a candidate measured from the CLI and the same setting chosen in a panel share a key: moving a
slider back to something already measured finds it in the run store instead of rerunning it.

>>> build_recipe("fp32") is None          # the unmodified model: the baseline
True
>>> [s.kind for s in build_recipe("int8-dynamic").steps]
['onnx-export', 'ort-optimize', 'dynamic-int8']
"""

from __future__ import annotations

from typing import Any

from ..core.config import PassConfig, check_choice, config_kinds
from ..core.errors import ConfigError
from ..passes import Cast, DynamicInt8, ExecuTorchExport, Int4WeightOnly, LiteRTExport, OnnxExport, StaticInt8
from .registry import INT8_FUSIONS, Recipe

__all__ = [
    "PRECISIONS",
    "PRECISION_HELP",
    "FORMATS",
    "FORMAT_HELP",
    "CALIBRATIONS",
    "BLOCK_SIZES",
    "build_recipe",
    "optional_pass",
    "recipe_steps",
]

#: the precision ladder of the quantization slider, from the untouched model to the smallest one
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8-dynamic", "int8-static", "int4")
#: one line per step, for help text and docs
PRECISION_HELP: dict[str, str] = {
    "fp32": "the original model in 32-bit floats: the reference every other setting is compared with",
    "bf16": "16-bit brain floats in PyTorch: half the size; fast on CPUs with avx512_bf16 or AMX",
    "fp16": "16-bit floats in PyTorch: half the size; slow on CPUs without avx512_fp16 (most x86)",
    "int8-dynamic": "ONNX Runtime, 8-bit weights, activations scaled on the fly: no calibration data needed",
    "int8-static": "ONNX Runtime, 8-bit weights and activations, ranges measured on calibration samples",
    "int4": "ONNX Runtime, 4-bit weights in blocks (MatMul layers only), float activations",
}
#: the target format: "onnx" = ONNX Runtime (or PyTorch for bf16/fp16) as the precision says; the edge formats
#: write a program for that runtime (pip install 'workbench[edge]'), with the precisions it has
FORMATS: tuple[str, ...] = ("onnx", "executorch", "litert")
FORMAT_HELP: dict[str, str] = {
    "onnx": "ONNX Runtime (PyTorch for BF16/FP16): every precision",
    "executorch": "FP32 or INT8 static: an ExecuTorch .pte program on the XNNPACK delegate",
    "litert": "FP32, INT8 dynamic or INT8 static (full INT8): a LiteRT .tflite model",
}
#: the precisions each edge format has
EDGE_PRECISIONS: dict[str, tuple[str, ...]] = {
    "executorch": ("fp32", "int8-static"),
    "litert": ("fp32", "int8-dynamic", "int8-static"),
}
CALIBRATIONS: tuple[str, ...] = ("minmax", "entropy", "percentile")
BLOCK_SIZES: tuple[int, ...] = (16, 32, 64, 128, 256)

# kinds the pruning/distillation passes register under (they may not exist in this version)
_PRUNE_KINDS = {"unstructured": "magnitude-prune", "structured": "structured-prune"}
_DISTILL_KIND = "distill"


def optional_pass(kind: str) -> type[PassConfig] | None:
    """The config class registered under ``kind``, or None when this version has no such pass."""
    # importing the passes package registers every pass that ships; optional modules register on import
    for mod in ("prune", "distill"):
        try:
            __import__(f"workbench.passes.{mod}")
        except ImportError:
            pass
    return config_kinds().get(kind)


def _edge_steps(precision: str, fmt: str, *, per_channel: bool, samples: int) -> list[PassConfig]:
    if precision not in EDGE_PRECISIONS[fmt]:
        raise ConfigError(
            f"The 'precision' parameter of build_recipe must be one of {', '.join(map(repr, EDGE_PRECISIONS[fmt]))} "
            f"with format={fmt!r} ({fmt}: {FORMAT_HELP[fmt]}). Got {precision!r} instead."
        )
    cls = ExecuTorchExport if fmt == "executorch" else LiteRTExport
    if precision == "fp32":
        return [cls()]
    if precision == "int8-dynamic":
        return [LiteRTExport(quantize="int8-dynamic", per_channel=per_channel)]
    return [cls(quantize="int8", per_channel=per_channel, samples=samples)]


def _precision_steps(
    precision: str, *, per_channel: bool, calibration: str, samples: int, block_size: int, format: str = "onnx"
) -> list[PassConfig]:
    if format != "onnx":
        return _edge_steps(precision, format, per_channel=per_channel, samples=samples)
    if precision == "fp32":
        return []
    if precision in ("bf16", "fp16"):
        return [Cast(precision)]
    if precision == "int8-dynamic":
        # export + fusions first: the same chain as the shipped 'ort-int8-dynamic' recipe
        return [OnnxExport(), INT8_FUSIONS, DynamicInt8(per_channel=per_channel)]
    if precision == "int8-static":
        return [OnnxExport(), StaticInt8(calibration=calibration, samples=samples, per_channel=per_channel)]
    return [OnnxExport(), Int4WeightOnly(block_size=block_size)]


def _optional_step(kind: str, what: str, settings: dict[str, Any]) -> PassConfig:
    cls = optional_pass(kind)
    if cls is None:
        raise ConfigError(
            f"{what} is not available in this version of the workbench (no {kind!r} pass is "
            f"registered). Leave {what.lower()} off."
        )
    fields = set(cls.__dataclass_fields__)
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ConfigError(
            f"The {kind!r} pass has no setting {unknown[0]!r}. Valid settings: {', '.join(sorted(fields))}."
        )
    return cls(**settings)


def recipe_steps(
    precision: str,
    *,
    per_channel: bool = True,
    calibration: str = "minmax",
    samples: int = 64,
    block_size: int = 32,
    prune: dict | None = None,
    distill: dict | None = None,
    format: str = "onnx",
) -> list[PassConfig]:
    """The passes for these settings, in order: distill -> prune -> precision (passes that need float
    weights come before quantization); ``format`` picks the runtime the precision step writes for."""
    check_choice("build_recipe", "precision", precision, PRECISIONS)
    check_choice("build_recipe", "format", format, FORMATS)
    check_choice("build_recipe", "calibration", calibration, CALIBRATIONS)
    check_choice("build_recipe", "block_size", block_size, BLOCK_SIZES)
    steps: list[PassConfig] = []
    if distill:
        steps.append(_optional_step(_DISTILL_KIND, "Distillation", dict(distill)))
    if prune:
        settings = dict(prune)
        method = settings.pop("method", "unstructured")
        check_choice("build_recipe", "prune['method']", method, tuple(_PRUNE_KINDS))
        kind = _PRUNE_KINDS[method]
        cls = optional_pass(kind)
        if cls is not None and "scope" not in cls.__dataclass_fields__:
            settings.pop("scope", None)
        steps.append(_optional_step(kind, "Pruning", settings))
    steps += _precision_steps(
        precision, per_channel=per_channel, calibration=calibration, samples=samples, block_size=block_size,
        format=format,
    )  # fmt: skip
    return steps


def build_recipe(
    precision: str,
    *,
    per_channel: bool = True,
    calibration: str = "minmax",
    samples: int = 64,
    block_size: int = 32,
    prune: dict | None = None,
    distill: dict | None = None,
    format: str = "onnx",
) -> Recipe | None:
    """Map panel settings to a Recipe (None = the unmodified FP32 baseline).

    ``prune`` is ``{"method": "unstructured" | "structured", "sparsity": 0.5, ...}`` (further keys are the
    prune pass's own fields); ``distill`` holds the distill pass's fields. Both raise ConfigError when this
    version has no such pass. ``format``: "onnx" (the default), "executorch" or "litert" (``FORMATS``); an edge
    format makes a program even at FP32 (``executorch-fp32``).

    >>> build_recipe("int8-static", calibration="entropy", samples=32).name
    'int8-static-entropy-32'
    """
    steps = recipe_steps(
        precision,
        per_channel=per_channel,
        calibration=calibration,
        samples=samples,
        block_size=block_size,
        prune=prune,
        distill=distill,
        format=format,
    )
    if not steps:
        return None
    opts = dict(per_channel=per_channel, calibration=calibration, samples=samples, block_size=block_size, format=format)
    n_float = len(steps) - len(_precision_steps(precision, **opts))  # distill / prune steps come first
    parts = [_short(s) for s in steps[:n_float]] + [_precision_name(precision, **opts)]
    name = "+".join(p for p in parts if p)
    desc = "; ".join(s.describe() for s in steps)
    return Recipe(name, tuple(steps), f"panel settings: {desc}", tags=("panel",))


def _precision_name(
    precision: str, *, per_channel: bool, calibration: str, samples: int, block_size: int, format: str = "onnx"
) -> str:
    if format != "onnx":  # the shipped recipes' names for their default settings (executorch-int8, litert-fp32)
        tail = {"fp32": "fp32", "int8-dynamic": "int8-dynamic", "int8-static": "int8"}[precision]
        if precision == "int8-static" and samples != 64:
            tail += f"-{samples}"
        return f"{format}-{tail}" + ("" if per_channel or precision == "fp32" else "-per-tensor")
    if precision == "fp32":
        return ""
    if precision == "int8-dynamic":
        return "int8-dynamic" + ("" if per_channel else "-per-tensor")
    if precision == "int8-static":
        return f"int8-static-{calibration}-{samples}" + ("" if per_channel else "-per-tensor")
    if precision == "int4":
        return f"int4-b{block_size}"
    return precision


def _short(step: PassConfig) -> str:
    sparsity = getattr(step, "sparsity", None)
    if sparsity is not None:
        return f"{step.kind}-{round(100 * sparsity)}pct"
    return step.kind
