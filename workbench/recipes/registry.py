"""Recipes: an ordered chain of passes with a name. Named recipes ship; JSON files work the same.

A recipe file::

    {"name": "my-int8", "description": "...",
     "steps": [{"kind": "onnx-export"}, {"kind": "dynamic-int8", "per_channel": false}]}

Validation names the step and the field that is wrong, and refuses chains that cannot work
(an ONNX pass before the export, pruning after quantization).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import PassConfig
from ..core.errors import ConfigError, RecipeError, UnknownNameError, article
from ..passes import (
    Cast,
    Distill,
    DynamicInt8,
    ExecuTorchExport,
    Int4WeightOnly,
    LiteRTExport,
    MagnitudePrune,
    OnnxExport,
    OrtOptimize,
    QuantAwareTraining,
    StaticInt8,
    StructuredPrune,
)

__all__ = [
    "Recipe",
    "RECIPES",
    "DEFAULT_RECIPES",
    "INT8_FUSIONS",
    "get_recipe",
    "register_recipe",
    "list_recipes",
    "load_recipe",
]


@dataclass(frozen=True)
class Recipe:
    name: str
    steps: tuple[PassConfig, ...]
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise RecipeError(f"A recipe needs a non-empty 'name'. Got {self.name!r}.")
        if not self.steps:
            raise RecipeError(f"Recipe {self.name!r} has no steps: a recipe needs at least one pass.")

    def validate_for(self, start_kind: str) -> None:
        """Check that each step can consume what the previous one produced."""
        kind = start_kind
        quantized_at: tuple[int, str] | None = None
        for i, step in enumerate(self.steps, 1):
            if step.consumes != kind:
                hint = (
                    "add an 'onnx-export' step before it"
                    if step.consumes == "onnx"
                    else "move it before the 'onnx-export' step"
                    if kind == "onnx"
                    else ""
                )
                raise RecipeError(
                    f"Recipe {self.name!r}, step {i} ({step.kind!r}) needs {article(step.consumes)} model "
                    f"but {f'step {i - 1}' if i > 1 else 'the input'} gives {article(kind)} one: {hint}."
                )
            if quantized_at and getattr(step, "needs_float_weights", False):
                j, qkind = quantized_at
                raise RecipeError(
                    f"Recipe {self.name!r}, step {i} ({step.kind!r}) cannot follow step {j} ({qkind!r}): "
                    f"{step.kind} needs float weights; put it before the quantization step."
                )
            if getattr(step, "quantizes", False) and quantized_at is None:
                quantized_at = (i, step.kind)
            kind = step.produces

    def adapted_to(self, start_kind: str) -> Recipe | None:
        """The recipe for a model that starts as ``start_kind``: an ONNX input skips a leading export.
        None when nothing is left to do (the recipe is the input model itself)."""
        if start_kind == "onnx" and self.steps[0].kind == "onnx-export":
            return Recipe(self.name, self.steps[1:], self.description, self.tags) if len(self.steps) > 1 else None
        return self

    def prefix(self, n: int) -> Recipe:
        return Recipe(self.name if n == len(self.steps) else f"{self.name}[:{n}]", self.steps[:n], self.description)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "steps": [s.to_dict() for s in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, source: str = "recipe") -> Recipe:
        if not isinstance(data, dict):
            raise RecipeError(
                f"{source}: a recipe must be a JSON object with 'name' and 'steps'. Got {type(data).__name__}."
            )
        unknown = sorted(set(data) - {"name", "description", "steps", "tags"})
        if unknown:
            raise RecipeError(f"{source}: unknown field {unknown[0]!r}. Valid fields: description, name, steps, tags.")
        steps = data.get("steps")
        if not isinstance(steps, list) or not steps:
            raise RecipeError(f"{source}: 'steps' must be a non-empty list of passes. Got {steps!r}.")
        parsed = []
        for i, s in enumerate(steps, 1):
            where = f"{source}, step {i}" + (f" ({s.get('kind')!r})" if isinstance(s, dict) and "kind" in s else "")
            try:
                parsed.append(PassConfig.from_dict(s, where=where))
            except UnknownNameError as e:
                raise RecipeError(f"{where}: {e}") from None
            except ConfigError as e:
                raise RecipeError(str(e)) from None
        return cls(
            str(data.get("name") or source),
            tuple(parsed),
            str(data.get("description", "")),
            tuple(data.get("tags", ())),
        )


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


def list_recipes() -> list[Recipe]:
    return list(RECIPES.values())


def load_recipe(path: str | Path) -> Recipe:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"No recipe file at {p}.") from None
    except IsADirectoryError:
        raise RecipeError(f"{p} is a folder, not a recipe file (a JSON file with 'name' and 'steps').") from None
    except UnicodeDecodeError:
        raise RecipeError(
            f"{p} is not a text file (not UTF-8): a recipe is a JSON file with 'name' and 'steps'."
        ) from None
    except OSError as e:
        raise RecipeError(f"Cannot read the recipe file {p}: {e.strerror or e}.") from None
    except json.JSONDecodeError as e:
        raise RecipeError(f"{p} is not valid JSON: {e}") from None
    return Recipe.from_dict(data, source=p.name)


def get_recipe(name_or_path: str | Recipe | dict) -> Recipe:
    """A named recipe, a path to a recipe JSON file, a dict, or a Recipe (returned as is)."""
    if isinstance(name_or_path, Recipe):
        return name_or_path
    if isinstance(name_or_path, dict):
        return Recipe.from_dict(name_or_path)
    if name_or_path in RECIPES:
        return RECIPES[name_or_path]
    if str(name_or_path).endswith(".json") or Path(str(name_or_path)).is_file():
        return load_recipe(name_or_path)
    raise UnknownNameError("recipe", name_or_path, list(RECIPES) + ["<file.json>"])


_E, _O = OnnxExport(), OrtOptimize()
#: the fusion step before dynamic INT8 (recipes, the search's int8-dynamic family, the dashboard's slider):
#: GELU's tanh form too, whose error (~1e-3) is far below INT8's own and which is cheaper
INT8_FUSIONS = OrtOptimize(gelu_approximation=True)
for _r in (
    Recipe("ort-fp32", (_E,), "ONNX Runtime, FP32: same numbers, a faster runtime"),
    Recipe("ort-optimized", (_E, _O), "ONNX Runtime FP32 with fused attention/LayerNorm/GELU"),
    Recipe(
        "ort-int8-dynamic",
        (_E, INT8_FUSIONS, DynamicInt8(per_channel=True)),
        "fused graph (tanh GELU) + dynamic INT8, per-channel weights: the best speed/accuracy trade on VNNI CPUs",
    ),
    Recipe(
        "ort-int8-dynamic-per-tensor",
        (_E, INT8_FUSIONS, DynamicInt8(per_channel=False)),
        "as ort-int8-dynamic with one scale per tensor: a little faster to quantize, less accurate",
    ),
    Recipe(
        "ort-int8-static",
        (_E, StaticInt8()),
        "static INT8 with minmax calibration (QDQ), attention and FFN-output MatMuls kept in float",
    ),
    Recipe("bf16", (Cast("bf16"),), "PyTorch in bfloat16: half the size, fast with avx512_bf16/AMX"),
    Recipe("fp16", (Cast("fp16"),), "PyTorch in float16: half the size; slow without avx512_fp16"),
    Recipe(
        "int4-weight-only",
        (_E, Int4WeightOnly(block_size=32)),
        "4-bit block-quantized MatMul weights (MatMulNBits), float activations",
    ),
    # compression: structured pruning and distillation, then the same INT8 tail
    Recipe(
        "prune-structured-int8",
        (StructuredPrune(sparsity=0.5), _E, INT8_FUSIONS, DynamicInt8(per_channel=True)),
        "half the heads / FFN neurons (or channels) removed and fine-tuned, then fused graph + dynamic INT8",
        ("prune", "int8"),
    ),
    Recipe(
        "prune-structured-int8-static",
        (StructuredPrune(sparsity=0.5), _E, StaticInt8()),
        "half the channels (or heads / FFN neurons) removed and fine-tuned, then static INT8 (QDQ, per-channel): "
        "the INT8 path for CNNs, whose dynamic INT8 (ConvInteger) is slow on CPUs",
        ("prune", "int8"),
    ),
    Recipe(
        "prune-distill-int8",
        (
            StructuredPrune(sparsity=0.5, targets=("ffn",), finetune_steps=0),
            Distill(),
            _E,
            INT8_FUSIONS,
            DynamicInt8(per_channel=True),
        ),
        "half the FFN neurons removed, a half-depth student distilled from the FP32 teacher, then dynamic INT8",
        ("prune", "distill", "int8"),
    ),
    Recipe(
        "magnitude-prune-50",
        (MagnitudePrune(sparsity=0.5, finetune_steps=100),),
        "half the weights zeroed (smaller zipped, same latency), fine-tuned",
        ("prune",),
    ),
    Recipe(
        "distill-int8",
        (Distill(), _E, INT8_FUSIONS, DynamicInt8(per_channel=True)),
        "half-depth student trained from the FP32 teacher, then fused graph + dynamic INT8 (transformers: "
        "dynamic INT8 keeps accuracy where static INT8 breaks attention)",
        ("distill", "int8"),
    ),
    Recipe(
        "qat-int8",
        (QuantAwareTraining(),),
        "fake-quantized fine-tuning exported to a QDQ INT8 ONNX model",
        ("qat", "int8"),
    ),
):
    register_recipe(_r)

# edge formats (pip install 'workbench[edge]'): an ExecuTorch program or a LiteRT model, each measured with its own
# runtime on this machine, with a delegation report (which operators ran inside XNNPACK); the compression steps
# come first, in PyTorch, as in the ONNX recipes
_ET8, _LT8 = ExecuTorchExport(quantize="int8"), LiteRTExport(quantize="int8")
for _r in (
    Recipe(
        "executorch-fp32",
        (ExecuTorchExport(),),
        "ExecuTorch program (.pte), FP32 on the XNNPACK delegate: what a phone runs with ExecuTorch",
        ("edge",),
    ),
    Recipe(
        "executorch-int8",
        (_ET8,),
        "ExecuTorch program, static INT8 (PT2E, XNNPACKQuantizer, per-channel weights, calibrated) on XNNPACK",
        ("edge", "int8"),
    ),
    Recipe("litert-fp32", (LiteRTExport(),), "LiteRT model (.tflite), FP32, XNNPACK delegate", ("edge",)),
    Recipe(
        "litert-int8-dynamic",
        (LiteRTExport(quantize="int8-dynamic"),),
        "LiteRT model, INT8 weights with activations quantized at run time (dynamic range): no calibration",
        ("edge", "int8"),
    ),
    Recipe(
        "litert-int8",
        (_LT8,),
        "LiteRT model, full INT8 (weights and activations, calibrated); INT8 inputs where the first op is quantized",
        ("edge", "int8"),
    ),
    Recipe(
        "prune-structured-executorch-int8",
        (StructuredPrune(sparsity=0.5), _ET8),
        "half the channels (or heads / FFN neurons) removed and fine-tuned, then an INT8 ExecuTorch program",
        ("prune", "edge", "int8"),
    ),
    Recipe(
        "prune-structured-litert-int8",
        (StructuredPrune(sparsity=0.5), _LT8),
        "half the channels (or heads / FFN neurons) removed and fine-tuned, then a full-INT8 LiteRT model",
        ("prune", "edge", "int8"),
    ),
    Recipe(
        "distill-executorch-int8",
        (Distill(), _ET8),
        "half-depth student trained from the FP32 teacher, then an INT8 ExecuTorch program",
        ("distill", "edge", "int8"),
    ),
    Recipe(
        "distill-litert-int8",
        (Distill(), _LT8),
        "half-depth student trained from the FP32 teacher, then a full-INT8 LiteRT model",
        ("distill", "edge", "int8"),
    ),
):
    register_recipe(_r)

#: what ``workbench optimize`` runs when no --recipe is given
DEFAULT_RECIPES = ("ort-fp32", "ort-int8-dynamic", "ort-int8-static", "bf16", "int4-weight-only")
