"""Passes: one config dataclass + one registered handler each. Import registers them all."""

from .distill import Distill
from .executorch import ExecuTorchExport
from .export import OnnxExport
from .graph import OrtOptimize
from .litert import LiteRTExport
from .precision import Cast, OnnxFp16
from .prune import MagnitudePrune, StructuredPrune
from .qat import QuantAwareTraining
from .quantize import DynamicInt8, Int4WeightOnly, StaticInt8, sensitive_matmuls
from .registry import PassJob, apply_pass, register_pass, registered_passes
from .selective import SelectiveQuant

__all__ = [
    "SelectiveQuant",
    "OnnxExport",
    "ExecuTorchExport",
    "LiteRTExport",
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
