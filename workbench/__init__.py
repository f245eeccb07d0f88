"""workbench: make AI models fit low-power devices, measured and recorded.

The compute library behind the panels, notebooks and CLI. It never imports ipywidgets or IPython.

>>> import workbench as wb
>>> cands = wb.optimize("digits-cnn", ["ort-int8-dynamic"])   # doctest: +SKIP
>>> wb.RunStore().to_frame()                                  # doctest: +SKIP
"""

from __future__ import annotations

import logging as _logging

__version__ = "0.1.0"

from .core.artifact import Artifact, onnx_artifact, torch_artifact
from .core.config import PassConfig
from .core.context import ProgressEvent, RunContext
from .core.env import cpu_flags, fingerprint
from .core.errors import (
    CancelledError,
    ConfigError,
    DataError,
    DataNotice,
    ModelLoadError,
    ModelRunError,
    OfflineError,
    ParityError,
    PassError,
    RecipeError,
    StoreError,
    UnknownNameError,
    WorkbenchError,
)
from .data.dataset import Dataset, describe_dataset
from .data.readers import read_data
from .data.source import TASK_KINDS
from .data.splits import Split, TaskData
from .measure.benchmark import BenchConfig, LatencyResult, benchmark
from .models.registry import LoadedModel, ModelInfo, from_module, list_models, load_model
from .optimize import BASELINE, measure, optimize, run_baseline, run_recipe
from .passes import (
    Cast,
    Distill,
    DynamicInt8,
    ExecuTorchExport,
    Int4WeightOnly,
    LiteRTExport,
    MagnitudePrune,
    OnnxExport,
    OnnxFp16,
    OrtOptimize,
    QuantAwareTraining,
    StaticInt8,
    StructuredPrune,
    registered_passes,
)
from .recipes.registry import DEFAULT_RECIPES, Recipe, get_recipe, list_recipes, load_recipe, register_recipe
from .store.candidate import Candidate
from .store.runstore import RunStore

__all__ = [
    "cpu_flags",
    "fingerprint",
    "__version__",
    "Distill",
    "MagnitudePrune",
    "QuantAwareTraining",
    "StructuredPrune",
    "Artifact",
    "onnx_artifact",
    "torch_artifact",
    "BenchConfig",
    "LatencyResult",
    "benchmark",
    "Candidate",
    "PassConfig",
    "ProgressEvent",
    "RunContext",
    "Split",
    "TaskData",
    "Dataset",
    "describe_dataset",
    "read_data",
    "TASK_KINDS",
    "CancelledError",
    "ConfigError",
    "DataError",
    "ModelLoadError",
    "ModelRunError",
    "DataNotice",
    "OfflineError",
    "ParityError",
    "PassError",
    "RecipeError",
    "StoreError",
    "UnknownNameError",
    "WorkbenchError",
    "LoadedModel",
    "ModelInfo",
    "from_module",
    "list_models",
    "load_model",
    "BASELINE",
    "measure",
    "optimize",
    "run_baseline",
    "run_recipe",
    "Cast",
    "DynamicInt8",
    "ExecuTorchExport",
    "LiteRTExport",
    "Int4WeightOnly",
    "OnnxExport",
    "OnnxFp16",
    "OrtOptimize",
    "StaticInt8",
    "registered_passes",
    "DEFAULT_RECIPES",
    "Recipe",
    "get_recipe",
    "list_recipes",
    "load_recipe",
    "register_recipe",
    "RunStore",
]

from . import lm  # noqa: F401  # registers the bundled causal LM 'smollm2', its passes and lm-* recipes

# transformers imports torchao when it is installed (the edge extra pulls it in for ExecuTorch), and torchao then
# logs that its CUDA kernels cannot load on this CPU build, and torch that two of its enums are registered twice:
# noise in every command's output, about nothing the workbench uses
_logging.getLogger("torchao").setLevel(_logging.ERROR)
_logging.getLogger("torch.utils._pytree").setLevel(_logging.ERROR)
