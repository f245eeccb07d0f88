"""Passes: one config dataclass + one registered handler each. Import registers them all."""

from .export import OnnxExport
from .graph import OrtOptimize
from .precision import Cast, OnnxFp16
from .quantize import DynamicInt8, Int4WeightOnly, StaticInt8, sensitive_matmuls
from .registry import PassJob, apply_pass, register_pass, registered_passes

# isort: split
# after the core passes: these modules register recipes, and recipes.py imports the names above
from .distill import Distill
from .prune import MagnitudePrune, StructuredPrune
from .qat import QuantAwareTraining

__all__ = [
    "OnnxExport",
    "OrtOptimize",
    "Cast",
    "OnnxFp16",
    "DynamicInt8",
    "StaticInt8",
    "Int4WeightOnly",
    "Distill",
    "MagnitudePrune",
    "StructuredPrune",
    "QuantAwareTraining",
    "PassJob",
    "apply_pass",
    "register_pass",
    "registered_passes",
    "sensitive_matmuls",
]
