"""Hugging Face models scored through their own head on the user's data (local save_pretrained folders only).

- a text classifier (``BertForSequenceClassification``): labels matched to its ``id2label``, a clear error when
  they do not match or when no data is given, the ONNX / INT8 recipes measured on the user's texts;
- image classifiers (tiny ViT, tiny MobileNetV2 trained for a few seconds on coloured squares): images encoded by
  the model's own processor, static INT8 calibrated on the user's training images (QDQ, per-channel conv weights);
- a bare encoder (MiniLM) with the user's labelled texts: a linear head on the user's labels, accurate, cached
  per data set;
- a task that contradicts the architecture, an unknown task, a checkpoint without a trained head.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import workbench as wb
from workbench.data.dataset import Dataset, encode_labels
from workbench.data.images import encode_with_processor
from workbench.measure.evaluate import predict
from workbench.models.hf import HF_TASKS, architecture_task, load_hf, minilm_path

ID2LABEL = {0: "sport", 1: "cooking", 2: "computing"}
COLOURS = {"red": (210, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 210)}

_TOPICS = {
    "sport": (
        ["The striker", "The goalkeeper", "Our home team", "The tennis champion", "The marathon runner", "The coach"],
        ["scored a late goal in the final", "won the league match on Saturday", "trained hard for the cup game",
         "broke the world record at the stadium"],
    ),
    "cooking": (
        ["The chef", "My grandmother", "The baker", "Our cook", "The pastry student", "The restaurant kitchen"],
        ["roasted the chicken with garlic and herbs", "baked a chocolate cake in the oven",
         "simmered the tomato soup for an hour", "whisked eggs and flour for the pancakes"],
    ),
    "computing": (
        ["The programmer", "The laptop", "Our server", "The software engineer", "The new processor", "The database"],
        ["compiled the code and fixed a memory bug", "ran the Python script on the GPU",
         "installed the operating system update", "crashed after the kernel driver upgrade"],
    ),
}  # fmt: skip


def _texts(per_topic: dict[str, int], offset: int = 0) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for topic, n in per_topic.items():
        subjects, verbs = _TOPICS[topic]
        for i in range(n):
            j = i + offset
            texts.append(f"{subjects[j % len(subjects)]} {verbs[(j // len(subjects) + j) % len(verbs)]}.")
            labels.append(topic)
    return texts, labels


def text_dataset(per_topic: dict[str, int], source: str = "topics.csv", offset: int = 0) -> Dataset:
    texts, labels = _texts(per_topic, offset)
    y, names = encode_labels(labels, source, "label")
    return Dataset(
        kind="text",
        source=source,
        format="csv",
        texts=texts,
        labels=y,
        label_names=names,
        columns={"text": "text", "label": "label"},
    )


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


@pytest.fixture(scope="module")
def seqcls_dir(tmp_path_factory, tokenizer):
    """A tiny BertForSequenceClassification (random weights) with MiniLM's real tokenizer and 3 topic labels."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    d = tmp_path_factory.mktemp("seqcls")
    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


def _colour_images(seed: int, per_class: int):
    """Noisy 36x44 squares of the three colours (PIL images) and their names."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images, names = [], []
    for name, rgb in COLOURS.items():
        for _ in range(per_class):
            a = np.clip(np.array(rgb)[None, None] + rng.normal(0, 25, (36, 44, 3)), 0, 255).astype(np.uint8)
            images.append(Image.fromarray(a))
            names.append(name)
    return images, names


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory):
    """An image folder of 3 colours (noisy 36x44 squares, one RGBA), one sub-folder per label."""
    root = tmp_path_factory.mktemp("colours")
    images, names = _colour_images(seed=0, per_class=14)
    paths = []
    for i, (img, name) in enumerate(zip(images, names)):
        (root / name).mkdir(exist_ok=True)
        if i == 0:
            img = img.convert("RGBA")  # the encoder converts to the model's 3 channels
        p = root / name / f"{i}.png"
        img.save(p)
        paths.append(str(p))
    y, label_names = encode_labels(names, str(root), "label")
    return Dataset(
        kind="image", source=str(root), format="image-folder", images=paths, labels=y, label_names=label_names
    )


def _colour_id2label() -> dict[int, str]:
    return {0: "red", 1: "green", 2: "blue"}


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    d = tmp_path_factory.mktemp("vit")
    id2label = _colour_id2label()
    cfg = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(0)
    ViTForImageClassification(cfg).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def mobilenet_dir(tmp_path_factory):
    """A tiny MobileNetV2 trained for a few seconds on other noisy squares than the user's (held-out accuracy)."""
    import torch
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification, MobileNetV2ImageProcessor

    d = tmp_path_factory.mktemp("mobilenet")
    id2label = _colour_id2label()
    cfg = MobileNetV2Config(
        image_size=32,
        depth_multiplier=0.35,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    proc = MobileNetV2ImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    images, names = _colour_images(seed=1, per_class=8)
    x = torch.from_numpy(proc(images=images, return_tensors="np")["pixel_values"])
    y = torch.tensor([cfg.label2id[n] for n in names])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # depthwise-conv backward: one thread is as fast and immune to a busy machine
    try:
        torch.manual_seed(0)
        model = MobileNetV2ForImageClassification(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(30):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(pixel_values=x).logits, y).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d


def _per_channel_conv_weights(path) -> tuple[int, int]:
    """(Conv/Gemm/MatMul weights dequantized per channel, per tensor) in a QDQ model."""
    import onnx

    m = onnx.load(str(path))
    inits = {i.name: i for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    per_channel = per_tensor = 0
    for n in m.graph.node:
        if n.op_type not in ("Conv", "Gemm", "MatMul") or len(n.input) < 2:
            continue
        dq = producer.get(n.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        scale = inits.get(dq.input[1])
        if scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1:
            per_channel += 1
        else:
            per_tensor += 1
    return per_channel, per_tensor


# ---- text classifiers: their own head --------------------------------------------------------
def test_sequence_classifier_scores_the_users_texts_through_its_own_head(seqcls_dir, store, fast_bench):
    ds = text_dataset({"sport": 24, "cooking": 18, "computing": 18})
    model = load_hf(str(seqcls_dir), local=True, n_eval=None, seed=0, data=ds, max_length=24)
    assert model.task.name == "text-classification"
    # the data's sorted labels (computing, cooking, sport) are re-mapped onto the model's id2label order
    assert model.data.label_names == ("sport", "cooking", "computing")
    all_labels = np.concatenate([model.data.train.labels, model.data.eval.labels])
    assert np.bincount(all_labels).tolist() == [24, 18, 18]
    assert model.data.eval.inputs["input_ids"].shape[1] == 24
    assert model.info["dataset"]["rows"] == 60 and model.info["dataset"]["labels"]["sport"] == 24
    assert any("matched" in n for n in model.info["dataset"]["notes"])
    out = model.baseline.runner()(model.data.eval.take(slice(0, 2)).inputs)
    assert out.shape == (2, 3)  # logits of the model's own head

    cands = wb.optimize(model, ["ort-fp32", "ort-int8-dynamic", "ort-int8-static"], store=store, bench=fast_bench)
    assert [c.status in ("ok", "degraded") for c in cands] == [True] * 4, [c.error for c in cands]
    assert all(c.task == "text-classification" for c in cands)
    for c in cands:
        assert 0.0 <= c.metrics["accuracy"] <= 1.0 and c.metrics["n_eval"] == len(model.data.eval)
    assert cands[1].metrics["agreement"] == 1.0  # ort-fp32: the same numbers in another runtime

    # an encoded TaskData is taken as it is (the model's input names); task="classification": the checkpoint's kind
    given = load_hf(str(seqcls_dir), local=True, n_eval=8, seed=0, data=model.data, task="classification")
    assert given.task.name == "text-classification" and len(given.data.eval) == 8
    assert given.data.label_names == model.data.label_names and "dataset" not in given.info

    # another data set never shares the cached results
    other = load_hf(
        str(seqcls_dir), local=True, n_eval=None, seed=0, data=text_dataset({"sport": 10, "cooking": 10}), max_length=24
    )
    assert other.fingerprint != model.fingerprint


def test_sequence_classifier_label_mismatch_lists_both_label_sets(seqcls_dir):
    ds = text_dataset({"sport": 6, "cooking": 6})
    ds = replace(ds, label_names=("cooking", "weather"))
    with pytest.raises(wb.DataError) as e:
        load_hf(str(seqcls_dir), local=True, n_eval=None, seed=0, data=ds)
    msg = str(e.value)
    assert "['weather']" in msg  # the unknown label
    assert "['cooking', 'weather']" in msg and "['sport', 'cooking', 'computing']" in msg  # both label sets


def test_sequence_classifier_without_data_says_what_to_pass(seqcls_dir):
    with pytest.raises(wb.DataError) as e:
        load_hf(str(seqcls_dir), local=True, n_eval=None, seed=0)
    msg = str(e.value)
    assert "text classifier" in msg and "labelled texts" in msg
    assert "data=" in msg and "--data FILE --text-column C --label-column C" in msg
    assert "No bundled data set" in msg and "'sport'" in msg


def test_sequence_classifier_refuses_images(seqcls_dir, image_dataset):
    with pytest.raises(wb.DataError, match="needs text data"):
        load_hf(str(seqcls_dir), local=True, n_eval=None, seed=0, data=image_dataset)


# ---- image classifiers: their own head and their own processor ----------------------------------
@pytest.mark.parametrize("which", ["vit", "mobilenet"])
def test_image_classifier_on_an_image_folder(which, request, image_dataset, store, fast_bench):
    folder = request.getfixturevalue(f"{which}_dir")
    model = load_hf(str(folder), local=True, n_eval=None, seed=0, data=image_dataset)
    assert model.task.name == "image-classification"
    assert model.data.label_names == ("red", "green", "blue")
    px = model.data.eval.inputs["pixel_values"]
    assert px.dtype == np.float32 and px.shape[1:] == (3, 32, 32)  # resized by the model's processor
    assert -1.01 <= px.min() and px.max() <= 1.01  # normalised with its mean/std (0.5, 0.5)
    assert model.data.calibration is not None and len(model.data.calibration) == len(model.data.train)
    assert model.info["dataset"]["rows"] == 42

    cands = wb.optimize(model, ["ort-fp32", "ort-int8-dynamic", "ort-int8-static"], store=store, bench=fast_bench)
    assert [c.status in ("ok", "degraded") for c in cands] == [True] * 4, [c.error for c in cands]
    assert all("accuracy" in c.metrics and c.task == "image-classification" for c in cands)
    assert cands[1].metrics["agreement"] == 1.0
    static = cands[3]
    assert static.recipe_name == "ort-int8-static"
    per_channel, per_tensor = _per_channel_conv_weights(static.artifact_path)
    assert per_channel > 0 and per_tensor == 0  # QDQ, one scale per output channel
    if which == "mobilenet":  # trained: real accuracy, and static INT8 calibrated on the user's images keeps it
        assert cands[0].metrics["accuracy"] >= 0.9
        assert static.metrics["agreement"] >= 0.9 and static.status == "ok", static.error


def test_image_classifier_without_data_asks_for_an_image_folder(vit_dir):
    with pytest.raises(wb.DataError) as e:
        load_hf(str(vit_dir), local=True, n_eval=None, seed=0)
    assert "image folder" in str(e.value) and "--data FOLDER" in str(e.value) and "data=" in str(e.value)


def test_image_labels_that_are_not_the_models(vit_dir, image_dataset):
    ds = replace(image_dataset, label_names=("blue", "green", "purple"))
    with pytest.raises(wb.DataError, match="purple"):
        load_hf(str(vit_dir), local=True, n_eval=None, seed=0, data=ds)


def test_grey_images_become_rgb(vit_dir, tmp_path):
    from PIL import Image
    from transformers import AutoImageProcessor

    p = tmp_path / "grey.png"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(p)
    ds = Dataset(kind="image", source=str(tmp_path), format="image-folder", images=[str(p)])
    split = encode_with_processor(AutoImageProcessor.from_pretrained(vit_dir, use_fast=False))(ds)
    assert split.inputs["pixel_values"].shape == (1, 3, 32, 32) and split.labels is None


# ---- bare encoders with the user's texts ----------------------------------------------------------
def _accuracy(model) -> float:
    out = predict(model.baseline.runner(), model.data.eval)
    return model.task.metrics(out, model.data.eval.labels, None)["accuracy"]


def test_bare_encoder_learns_the_users_labels(store):
    three = text_dataset({"sport": 20, "cooking": 20, "computing": 20}, source="three.csv")
    model = load_hf(minilm_path(), local=True, n_eval=None, seed=0, data=three, max_length=32)
    assert model.task.name == "embedding-classification"
    assert model.data.label_names == ("computing", "cooking", "sport")  # the user's labels
    assert model.task.head.weight.shape == (3, 384)
    assert model.info["dataset"]["source"] == "three.csv" and len(model.data.eval) == 18
    # through the pipeline: the baseline is scored on the user's held-out texts (chance: 0.33)
    (base,) = wb.optimize(model, [], store=store, bench=wb.BenchConfig(warmup=0, runs=1))
    assert base.status == "ok" and base.metrics["accuracy"] >= 0.85, base.metrics
    assert base.metrics["n_eval"] == 18

    # two classes (scikit-learn's one-row binary head spread to two logits), other texts: another cache entry
    two = text_dataset({"sport": 15, "cooking": 15}, source="two.csv", offset=3)
    other = load_hf(minilm_path(), local=True, n_eval=None, seed=0, data=two, max_length=32)
    assert other.task.head.weight.shape == (2, 384)
    assert other.info["head_key"] != model.info["head_key"] and other.fingerprint != model.fingerprint
    assert _accuracy(other) >= 0.85
    # the same data again: the same head and fingerprint (the head is read from the cache); n_eval changes
    # what is scored, not the head
    again = load_hf(minilm_path(), local=True, n_eval=6, seed=0, data=two, max_length=32)
    assert again.info["head_key"] == other.info["head_key"] and again.fingerprint != other.fingerprint
    np.testing.assert_array_equal(again.task.head.weight, other.task.head.weight)
    assert len(again.data.eval) == 6


def test_bare_encoder_needs_labels():
    ds = text_dataset({"sport": 4, "cooking": 4})
    ds = Dataset(kind="text", source="nolabels.csv", format="csv", texts=ds.texts)
    with pytest.raises(wb.DataError, match="no labels"):
        load_hf(minilm_path(), local=True, n_eval=None, seed=0, data=ds)


# ---- tasks and architectures ---------------------------------------------------------------------
def test_task_that_contradicts_the_architecture(seqcls_dir, vit_dir):
    with pytest.raises(wb.ConfigError) as e:
        load_hf(str(vit_dir), local=True, n_eval=None, seed=0, task="text-classification")
    assert "ViTForImageClassification" in str(e.value) and "'image-classification'" in str(e.value)
    with pytest.raises(wb.ModelLoadError) as e:  # as load_model("<bert folder>", task="causal-lm") always said
        load_hf(str(seqcls_dir), local=True, n_eval=None, seed=0, task="causal-lm")
    msg = str(e.value)
    assert "BertForSequenceClassification" in msg and "'text-classification', 'embedding-classification'" in msg
    with pytest.raises(wb.ConfigError) as e:
        load_hf(str(seqcls_dir), local=True, n_eval=None, seed=0, task="generic")
    assert all(repr(t) in str(e.value) for t in HF_TASKS)


def test_config_without_architectures_and_no_trained_head(tmp_path, tokenizer):
    import torch
    from transformers import AutoConfig, BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert architecture_task(AutoConfig.from_pretrained(tmp_path)) == "embedding-classification"
    with pytest.raises(wb.ConfigError, match="'embedding-classification'"):
        load_hf(str(tmp_path), local=True, n_eval=None, seed=0, task="text-classification")
    conf = json.loads((tmp_path / "config.json").read_text())
    del conf["architectures"]
    (tmp_path / "config.json").write_text(json.dumps(conf))
    ds = text_dataset({"sport": 4, "cooking": 4})
    with pytest.raises(wb.ModelLoadError, match="no trained classification head"):
        load_hf(str(tmp_path), local=True, n_eval=None, seed=0, task="text-classification", data=ds)


def test_hub_id_offline_fails_fast():
    # conftest sets HF_HUB_OFFLINE=1: no probe, no download
    with pytest.raises(wb.OfflineError, match="unreachable"):
        load_hf("nobody-here/no-such-classifier", local=False, n_eval=None, seed=0, task="text-classification")
