"""What a loaded model is: its FP32 baseline artifact, task, data and fingerprint, and the registry entry of a bundled one."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import Artifact
from ..core.env import cache_dir
from ..core.errors import ModelLoadError
from ..data.splits import TaskData
from ..measure.evaluate import predict
from ..tasks import Task


@dataclass(frozen=True)
class ModelInfo:
    name: str
    task: str
    source: str
    description: str
    params: int | None = None
    size_mb: float | None = None


@dataclass
class LoadedModel:
    name: str
    task: Task
    data: TaskData
    baseline: Artifact
    source: str
    fingerprint: str
    #: facts passes may need: model_type, num_heads, hidden_size (transformer fusions), tokenizer...
    info: dict[str, Any] = field(default_factory=dict)
    #: how ``load_model`` was called (name, n_eval, seed, data paths, task, column options): JSON-able, so
    #: another process (a Ray worker, a report) loads the very same model
    load_spec: dict[str, Any] = field(default_factory=dict)
    _reference: np.ndarray | None = field(default=None, repr=False)

    def reference_outputs(self, threads: int | None = None) -> np.ndarray:
        """FP32 baseline outputs on the eval split (computed once, cached on disk by fingerprint)."""
        if self._reference is None:
            path = Path(cache_dir()) / f"reference-{self.fingerprint}.npy"
            if path.exists():
                self._reference = np.load(path, allow_pickle=False)
            else:
                self._reference = predict(self.baseline.runner(threads), self.data.eval)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, self._reference)
                os.replace(tmp, path)
        return self._reference

    def bench_inputs(self) -> dict[str, np.ndarray]:
        """Batch-1 inputs for latency: the first eval example (seq 128 for text models)."""
        return self.data.eval.take(slice(0, 1)).inputs

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task.name,
            "source": self.source,
            "params": self.baseline.param_count(),
            "size_bytes": self.baseline.size_bytes(),
            "n_eval": len(self.data.eval),
            "fingerprint": self.fingerprint,
            "dataset": self.info.get("dataset"),
        }


def model_fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def train_cached(
    prefix: str, key: str, build: Callable[[], Any], train: Callable[[Any], Any], seed: int
) -> tuple[Any, Path, bool]:
    """The trained module ``build()`` makes: its weights from ``cache_dir()/{prefix}-{key}.safetensors``, or trained
    now (seeded initial weights, then ``train(module)``) and saved atomically. Returns ``(module, path, trained)``."""
    from safetensors.torch import load_file, save_file

    torch = torch_lib()
    path = Path(cache_dir()) / f"{prefix}-{key}.safetensors"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = build()
    if path.exists():
        module.load_state_dict(load_file(path))
        module.eval()
        return module, path, False
    train(module)
    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))
    os.replace(tmp, path)
    return module, path, True


def torch_lib():
    """torch, imported where a model class is defined (the workbench imports it lazily elsewhere)."""
    import torch

    return torch


#: loaders of whole model families that live in their own package (the causal-LM package fills this on
#: import): task name -> (loader(path_or_id, n_eval=, seed=, **kw), file suffixes it reads)
_FAMILY_LOADERS: dict[str, tuple[Callable[..., LoadedModel], tuple[str, ...]]] = {}


def register_family_loader(task: str, loader: Callable[..., LoadedModel], suffixes: tuple[str, ...] = ()) -> None:
    """Let ``load_model`` hand hub ids / folders of ``task`` (and files with these suffixes) to ``loader``."""
    _FAMILY_LOADERS[task] = (loader, tuple(suffixes))


def family_loaders_for(suffix: str) -> list[Callable[..., LoadedModel]]:
    """The family loaders that read files with this suffix (``.gguf``: the causal-LM loader)."""
    return [loader for loader, suffixes in _FAMILY_LOADERS.values() if suffix in suffixes]


def family_loader(task: str) -> Callable[..., LoadedModel]:
    if task not in _FAMILY_LOADERS:
        raise ModelLoadError(f"No loader is registered for {task!r} models (import workbench loads them all).")
    return _FAMILY_LOADERS[task][0]
