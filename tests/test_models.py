"""Loading models: bundled names, Hugging Face folders, hub ids offline, ONNX files, Python modules; bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import workbench as wb
from workbench.data.splits import Split, TaskData
from workbench.measure.evaluate import predict


def test_unknown_model_lists_known_ones():
    with pytest.raises(wb.UnknownNameError) as e:
        wb.load_model("resnet-9000")
    assert "minilm" in str(e.value) and "digits-cnn" in str(e.value)


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_model_name(bad):
    with pytest.raises(wb.UnknownNameError):
        wb.load_model(bad)


_LOAD_UNKNOWN_HUB_ID = """
import workbench as wb
try:
    wb.load_model("nobody-here/no-such-model-xyz")
except Exception as e:
    print(type(e).__name__, "|", e)
else:
    print("loaded")
"""


def test_unreachable_hub_id_fails_fast():
    # the network probe really runs (no HF_HUB_OFFLINE), against a host that can never resolve (RFC 6761
    # .invalid), so the answer is the same on a machine with a network; a hang fails at the timeout
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = "https://hub.invalid"
    try:
        r = subprocess.run(
            [sys.executable, "-c", _LOAD_UNKNOWN_HUB_ID], env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("load_model of an unreachable hub id hung for 60 s instead of failing")
    assert r.returncode == 0, r.stderr[-2000:]
    kind, _, msg = r.stdout.strip().splitlines()[-1].partition(" | ")
    assert kind == "OfflineError", r.stdout
    assert "'nobody-here/no-such-model-xyz'" in msg and "unreachable (offline)" in msg
    assert "not in the local cache" in msg and "save_pretrained()" in msg  # and what to do instead


def test_list_models():
    names = {m.name for m in wb.list_models()}
    assert {"minilm", "digits-cnn"} <= names


def test_digits_cnn_is_accurate(digits_model):
    out = predict(digits_model.baseline.runner(), digits_model.data.eval)
    m = digits_model.task.metrics(out, digits_model.data.eval.labels, digits_model.reference_outputs())
    assert m["accuracy"] > 0.95
    lo, hi = m["accuracy_ci"]
    assert lo < m["accuracy"] < hi and hi - lo < 0.1
    assert m["agreement"] == 1.0


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A small BertModel written by save_pretrained, with MiniLM's real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from workbench.models.hf import minilm_path

    d = tmp_path_factory.mktemp("tiny-bert")
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(d)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(d)
    return d


def test_local_save_pretrained_folder(tiny_bert_dir, store, fast_bench):
    model = wb.load_model(str(tiny_bert_dir), n_eval=48)
    assert model.task.name == "embedding-classification"
    assert model.info["num_heads"] == 4
    cands = wb.optimize(model, ["ort-int8-dynamic"], store=store, bench=fast_bench)
    assert [c.status for c in cands] == ["ok", "ok"], [c.error for c in cands]
    assert cands[1].metrics["cosine"] > 0.95
    assert cands[1].metrics["size_bytes"] < cands[0].metrics["size_bytes"] / 2


def test_folder_without_config(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(wb.ModelLoadError, match="config.json"):
        wb.load_model(str(tmp_path))


def test_onnx_file_as_input(digits_model, tmp_path, store, fast_bench):
    from workbench.passes import PassJob, apply_pass

    exported = apply_pass(digits_model.baseline, wb.OnnxExport(), PassJob(model=digits_model, workdir=tmp_path / "e"))
    model = wb.load_model(str(exported.path))
    assert model.task.name == "generic" and model.baseline.kind == "onnx"
    cands = wb.optimize(model, ["ort-int8-static"], store=store, bench=fast_bench)
    assert [c.status for c in cands] == ["ok", "ok"], [c.error for c in cands]
    assert cands[1].metrics["cosine"] > 0.98
    # with labelled data it is scored like any classifier
    labelled = wb.load_model(str(exported.path), data=digits_model.data)
    (base,) = wb.optimize(labelled, [], store=store, bench=fast_bench)
    assert base.metrics["accuracy"] > 0.95


@pytest.mark.parametrize("content", [b"", b"definitely not a protobuf \x00\xff" * 10], ids=["empty", "garbage"])
def test_corrupt_onnx_file(tmp_path, content):
    p = tmp_path / "broken.onnx"
    p.write_bytes(content)
    with pytest.raises(wb.ModelLoadError, match="broken.onnx"):
        wb.load_model(str(p))


def test_from_module_with_python_data(store, fast_bench):
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    split = Split({"x": x}, y)
    data = TaskData(train=split, eval=split.take(slice(0, 128)), calibration=split.take(slice(128, 160)))
    model = wb.from_module(net, data, name="toy")
    cands = wb.optimize(model, ["ort-int8-dynamic", "ort-int8-static"], store=store, bench=fast_bench)
    assert all(c.status == "ok" for c in cands), [c.error for c in cands]
    assert cands[0].metrics["accuracy"] > 0.9
    assert all(c.metrics["agreement"] > 0.95 for c in cands[1:])


def test_empty_dataset():
    with pytest.raises(wb.DataError, match="empty"):
        TaskData(train=None, eval=Split({"x": np.zeros((0, 3), np.float32)}), calibration=None)


def test_mismatched_split():
    with pytest.raises(wb.DataError, match="same length"):
        Split({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))})


@pytest.mark.slow
def test_the_bundled_minilm_uses_the_head_that_ships_and_trains_none(tmp_path, monkeypatch):
    """A fresh machine (an empty cache) scores MiniLM through the BBC News head shipped in the package: nothing is
    embedded or written. A shipped head that no longer matches the model's key would be trained again and land in
    the cache, and this fails."""
    from workbench.models.hf import SHIPPED_HEADS

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    m = wb.load_model("minilm", n_eval=60)
    assert (SHIPPED_HEADS / f"head-{m.info['head_key']}.npz").is_file()
    assert not list((tmp_path / "cache").glob("head-*.npz"))
    from workbench.measure.evaluate import predict

    emb = predict(m.baseline.runner(), m.data.eval)
    pred = m.task.head(emb).argmax(axis=1)
    assert (pred == m.data.eval.labels).mean() > 0.9  # the shipped head scores the articles it was made for
