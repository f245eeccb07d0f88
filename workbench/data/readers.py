"""Read the user's own data, in the formats people have, into a :class:`~workbench.data.dataset.Dataset`.

One entry point, :func:`read_data`, for

- tables: CSV (``.csv``), TSV (``.tsv``, ``.tab``), JSON Lines (``.jsonl``, ``.ndjson``, ``.json``), Parquet
  (``.parquet``, ``.pq``): a text, an image-path or time-step rows of a series, with a label and a split column;
- Hugging Face ``datasets`` folders written by ``save_to_disk`` (a Dataset or a DatasetDict) and hub ids;
- image folders (one subfolder per class; optionally under ``train/`` and ``test/``);
- NumPy ``.npz`` files of named arrays (never unpickled);
- plain text / Markdown files or folders of them (documents for language models).

Columns the user does not name are detected and said in ``Dataset.notes`` and ``Dataset.columns``. Large tables
are sampled to ``max_rows`` while they stream (never loaded whole). Every error is a :class:`DataError` that names
the file, the problem and the valid choices.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import heapq
import json
import math
import numbers
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError, OfflineError
from .dataset import KINDS, Dataset, content_hash, encode_labels

__all__ = ["FORMATS", "IMAGE_SUFFIXES", "TEXT_SUFFIXES", "read_data", "hub_reachable"]

#: file suffix -> format name (``Dataset.format``)
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npz": "npz",
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
_TABULAR = ("csv", "tsv", "jsonl", "json", "parquet")

_SUPPORTED = (
    "CSV (.csv), TSV (.tsv, .tab), JSON Lines (.jsonl, .ndjson, .json), Parquet (.parquet, .pq), NumPy (.npz), "
    "text (.txt, .md, .markdown, .rst); or a folder: images in one subfolder per class, text files, or a Hugging "
    "Face datasets folder written by save_to_disk(); or a Hugging Face Hub dataset id (org/name)"
)
_IMAGE_LAYOUT = (
    "An image folder holds one subfolder per class, named by its label: FOLDER/cat/001.png, FOLDER/dog/002.jpg "
    "(optionally under FOLDER/train/ and FOLDER/test/)"
)

_TEXT_NAMES = ("text", "sentence", "content", "review", "document", "body", "review_text")
_LABEL_NAMES = ("label", "labels", "class", "target", "category", "y")
_IMAGE_NAMES = ("image", "img", "path", "file", "filename")
_SPLIT_NAMES = ("split", "set", "fold")
_NPZ_LABEL_NAMES = ("labels", "label", "y")
_NPZ_SERIES_NAMES = ("series", "x", "X", "windows")
_TRAIN_VALUES = ("train", "training", "trn")
_EVAL_VALUES = ("test", "testing", "eval", "evaluation", "validation", "valid", "val", "dev", "holdout", "heldout")
_HF_EVAL_SPLITS = ("test", "validation", "valid", "eval", "dev")
_BAD_FILES = ("stop", "skip")

_CHUNK_ROWS = 50_000  # CSV rows per streamed chunk (fixed: the sample of a seed must not depend on it varying)
_BATCH_ROWS = 65_536  # Parquet rows per streamed batch
_LONG_DOC_WORDS = 2000  # a single document longer than this is cut into paragraph chunks ...
_CHUNK_WORDS = 1000  # ... of about this many words
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


@dataclass(frozen=True)
class _Options:
    kind: str | None
    text_column: str | None
    label_column: str | None
    image_column: str | None
    series_columns: tuple[str, ...] | None
    split_column: str | None
    group_column: str | None
    window: int | None
    max_rows: int | None
    seed: int
    on_bad_files: str
    encoding: str

    def fingerprint_options(self, kind: str, fmt: str, columns: dict[str, str]) -> str:
        """The choices that change what is read: they go into the fingerprint with the bytes."""
        return json.dumps(
            {
                "kind": kind,
                "format": fmt,
                "columns": columns,
                "window": self.window,
                "max_rows": self.max_rows,
                "seed": self.seed if self.max_rows is not None else None,
                "on_bad_files": self.on_bad_files,
                "encoding": self.encoding,
            },
            sort_keys=True,
        )


def read_data(
    source: str | os.PathLike,
    *,
    kind: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    image_column: str | None = None,
    series_columns: Sequence[str] | str | None = None,
    split_column: str | None = None,
    group_column: str | None = None,
    window: int | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    on_bad_files: str = "stop",
    encoding: str = "utf-8",
) -> Dataset:
    """Read ``source`` (a file, a folder or a hub dataset id) into a :class:`Dataset`.

    ``kind`` is one of ``KINDS`` or None (detect it). Columns not named are detected and reported in the
    result's ``notes`` and ``columns``. Series from a table: rows are time steps, ``series_columns`` the channels,
    and either ``group_column`` (the rows of one id form one window) or ``window`` (consecutive rows cut into
    windows of that many rows within runs of one label). ``max_rows`` samples that many rows (seeded by
    ``seed``) while a large file streams; ``n_rows_total`` says how many there were. ``on_bad_files="skip"``
    skips unreadable images / undecodable text files instead of stopping with a list of them.
    """
    opts = _options(
        kind=kind,
        text_column=text_column,
        label_column=label_column,
        image_column=image_column,
        series_columns=series_columns,
        split_column=split_column,
        group_column=group_column,
        window=window,
        max_rows=max_rows,
        seed=seed,
        on_bad_files=on_bad_files,
        encoding=encoding,
    )
    if isinstance(source, os.PathLike):
        text = os.fspath(source)
        pathlike = True
    elif isinstance(source, str):
        text, pathlike = source.strip(), False
    else:
        raise DataError(
            f"The 'source' parameter of read_data must be a path (file or folder) or a hub dataset id. "
            f"Got {source!r} instead."
        )
    if not text:
        raise DataError("The 'source' parameter of read_data is empty: give a file, a folder or a hub dataset id.")
    path = Path(text).expanduser()
    if path.is_dir():
        return _read_folder(path, opts)
    if path.is_file():
        return _read_file(path, opts)
    if path.exists():
        raise DataError(f"{path} is neither a file nor a folder. Give one of: {_SUPPORTED}.")
    if not pathlike and _looks_like_hub_id(text):
        return _read_hub(text, opts)
    raise _missing(path)


# ---------------------------------------------------------------------------------------------------- options


def _options(**kw: Any) -> _Options:
    kind = kw["kind"]
    if kind is not None and kind not in KINDS:
        raise DataError(
            f"The 'kind' parameter of read_data must be one of {', '.join(map(repr, KINDS))} or None (detect it). "
            f"Got {kind!r} instead."
        )
    if kw["on_bad_files"] not in _BAD_FILES:
        raise DataError(
            f"The 'on_bad_files' parameter of read_data must be one of 'stop' (raise, naming the bad files) or "
            f"'skip' (skip them and say so). Got {kw['on_bad_files']!r} instead."
        )
    for name in ("window", "max_rows"):
        v = kw[name]
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0):
            raise DataError(f"The {name!r} parameter of read_data must be a positive int or None. Got {v!r} instead.")
        kw[name] = None if v is None else int(v)
    seed = kw["seed"]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise DataError(f"The 'seed' parameter of read_data must be an int. Got {seed!r} instead.")
    kw["seed"] = int(seed)
    enc = kw["encoding"]
    try:
        codecs.lookup(enc)
    except (LookupError, TypeError):
        raise DataError(
            f"The 'encoding' parameter of read_data must be a text encoding Python knows, e.g. 'utf-8', "
            f"'latin-1', 'cp1252', 'utf-16'. Got {enc!r} instead."
        ) from None
    for name in ("text_column", "label_column", "image_column", "split_column", "group_column"):
        v = kw[name]
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise DataError(f"The {name!r} parameter of read_data must be a column name or None. Got {v!r} instead.")
    sc = kw["series_columns"]
    if sc is not None:
        names = [s.strip() for s in sc.split(",")] if isinstance(sc, str) else list(sc)
        if not names or not all(isinstance(s, str) and s.strip() for s in names):
            raise DataError(
                "The 'series_columns' parameter of read_data must be column names: a list or a comma-separated "
                f"string ('ax,ay,az'). Got {sc!r} instead."
            )
        dup = sorted({s for s in names if names.count(s) > 1})
        if dup:
            raise DataError(f"The 'series_columns' parameter of read_data names {dup} more than once.")
        kw["series_columns"] = tuple(names)
    return _Options(**kw)


# ----------------------------------------------------------------------------------------------- dispatching


def _looks_like_hub_id(text: str) -> bool:
    return (
        bool(_HUB_ID.match(text))
        and Path(text).suffix.lower() not in FORMATS
        and not text.startswith((".", "~"))
        and text.count("/") <= 1
    )


def _missing(path: Path) -> DataError:
    parent = path.parent if str(path.parent) else Path(".")
    msg = f"No file or folder {path}"
    if parent.is_dir():
        try:
            entries = sorted(p.name for p in parent.iterdir() if not p.name.startswith("."))
        except OSError:
            entries = []
        close = difflib.get_close_matches(path.name, entries, n=3, cutoff=0.5)
        msg += f" (looked in {parent.resolve()})."
        if close:
            msg += " Did you mean " + " or ".join(repr(str(parent / c)) for c in close) + "?"
        elif entries:
            more = f" and {len(entries) - 10} more" if len(entries) > 10 else ""
            msg += f" That folder holds: {', '.join(entries[:10])}{more}."
        else:
            msg += " That folder is empty."
    else:
        msg += f": its folder {parent} does not exist either."
    return DataError(msg + f" Give one of: {_SUPPORTED}.")


def _read_file(path: Path, opts: _Options) -> Dataset:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        hint = ""
        if path.suffix.lower() in IMAGE_SUFFIXES:
            hint = f" A single image is not a data set: {_IMAGE_LAYOUT}."
        raise DataError(
            f"{path}: unknown data format {path.suffix or '(no suffix)'!r}.{hint} Supported formats: {_SUPPORTED}."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes): there are no rows to read.")
    if fmt in _TABULAR:
        return _read_table(path, fmt, opts)
    if fmt == "npz":
        return _read_npz(path, opts)
    return _read_text_file(path, fmt, opts)


_JUNK = ("__MACOSX", "__pycache__", "Thumbs.db", "desktop.ini")


def _is_hidden(rel: Path) -> bool:
    return any(p.startswith(".") or p in _JUNK for p in rel.parts)


def _files_under(root: Path) -> list[Path]:
    """Every non-hidden file under ``root``, sorted by relative path."""
    out = [p for p in root.rglob("*") if p.is_file() and not _is_hidden(p.relative_to(root))]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _read_folder(path: Path, opts: _Options) -> Dataset:
    if any((path / n).is_file() for n in ("dataset_dict.json", "dataset_info.json", "state.json")):
        return _read_hf_folder(path, opts)
    files = _files_under(path)
    if not files:
        raise DataError(f"{path}: the folder holds no files. {_IMAGE_LAYOUT}; or give a folder of text files.")
    suffixes = Counter(p.suffix.lower() for p in files)
    n_img = sum(c for s, c in suffixes.items() if s in IMAGE_SUFFIXES)
    n_txt = sum(c for s, c in suffixes.items() if s in TEXT_SUFFIXES)
    kind = opts.kind
    if kind == "image" or (kind is None and n_img and n_img >= n_txt):
        return _read_image_folder(path, files, opts)
    found = ", ".join(f"{c} {s or '(no suffix)'}" for s, c in suffixes.most_common(6))
    if kind in ("documents", "text") and not n_txt:
        raise DataError(
            f"{path}: kind={kind!r} reads the text files ({', '.join(TEXT_SUFFIXES)}) of a folder, and it has none "
            f"(it holds: {found}). Pass the table that holds the text, or kind=None to detect the kind."
        )
    if kind in ("documents", "text") or (kind is None and n_txt):
        return _read_text_folder(path, files, opts, labelled=kind == "text")
    if kind is None:
        tables = [p for p in files if FORMATS.get(p.suffix.lower()) in (*_TABULAR, "npz")]
        hint = f" To read a data file inside it, pass the file itself, e.g. {tables[0]}." if tables else ""
        raise DataError(
            f"{path}: a folder with no images and no text files (it holds: {found}).{hint} {_IMAGE_LAYOUT}; or a "
            f"folder of text files ({', '.join(TEXT_SUFFIXES)}) gives documents."
        )
    raise DataError(
        f"{path}: a folder gives 'image' data (one subfolder per class) or 'documents' / 'text' data (text files), "
        f"not {kind!r}. Pass the file that holds the {kind} data (a table or an .npz) instead."
    )


# ------------------------------------------------------------------------------------------------ hashing


def _hash_file(path: Path, h: Any = None) -> str:
    own = h is None
    h = hashlib.sha256() if h is None else h
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() if own else ""


def _hash_tree(root: Path, files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        _hash_file(p, h)
        h.update(b"\0")
    return h.hexdigest()


def _finish(
    kind: str,
    src: str,
    fmt: str,
    digest: str,
    opts: _Options,
    columns: dict[str, str],
    notes: Sequence[str],
    **fields: Any,
) -> Dataset:
    fp = content_hash(digest, opts.fingerprint_options(kind, fmt, columns))
    return Dataset(kind=kind, source=src, format=fmt, columns=columns, fingerprint=fp, notes=tuple(notes), **fields)


def _check_kind(src: str, what: str, kind: str | None, allowed: Sequence[str]) -> None:
    if kind is not None and kind not in allowed:
        raise DataError(
            f"{src}: {what} gives {' or '.join(map(repr, allowed))} data, not kind={kind!r}. "
            "Pass one of those, or kind=None to detect it."
        )


def _sample_positions(n: int, k: int | None, seed: int) -> np.ndarray | None:
    """Sorted positions of a seeded sample of ``k`` of ``n`` rows; None when every row is kept.

    Row i gets the i-th number of ``default_rng(seed).random()``; the ``k`` rows of the smallest numbers are kept
    (a uniform sample without replacement). The streaming readers (CSV chunks, JSON Lines) draw the very same
    numbers, so one table gives the same sample as CSV, JSON Lines or Parquet. Drawn in blocks: memory ~ k.
    """
    if k is None or k >= n:
        return None
    rng = np.random.default_rng(seed)
    keys, pos = np.empty(0), np.empty(0, dtype=np.int64)
    for start in range(0, n, 1 << 20):
        m = min(1 << 20, n - start)
        keys = np.concatenate([keys, rng.random(m)])
        pos = np.concatenate([pos, np.arange(start, start + m, dtype=np.int64)])
        if len(keys) > k:
            sel = np.argpartition(keys, k - 1)[:k]
            keys, pos = keys[sel], pos[sel]
    return np.sort(pos)


def _sampled_note(k: int, n: int, seed: int, what: str = "rows") -> str:
    return f"sampled {k} of {n} {what} (seed {seed})"


# ----------------------------------------------------------------------------------------------- tables


def _read_table(path: Path, fmt: str, opts: _Options) -> Dataset:
    _check_kind(str(path), f"a {fmt.upper()} file", opts.kind, ("text", "image", "series", "documents"))
    is_series = opts.kind == "series" or bool(opts.series_columns or opts.group_column or opts.window)
    # series rows are time steps: never sample them (windows are sampled once they are cut)
    k = None if is_series else opts.max_rows
    if fmt in ("csv", "tsv"):
        df, total = _load_csv(path, fmt, opts, k)
    elif fmt in ("jsonl", "json"):
        df, total = _load_json(path, fmt, opts, k)
    else:
        df, total = _load_parquet(path, opts, k)
    notes = []
    if k is not None and total > k:
        notes.append(_sampled_note(len(df), total, opts.seed))
    return _from_frame(
        df, src=str(path), fmt=fmt, opts=opts, digest=_hash_file(path), n_total=total, notes=notes, base=path.parent
    )


def _decode_error(path: Path, encoding: str, e: UnicodeDecodeError, *, exact: bool = False) -> DataError:
    where = f" (byte 0x{e.object[e.start]:02x} at offset {e.start})" if exact and e.object else ""
    other = "'latin-1'" if codecs.lookup(encoding).name != "iso8859-1" else "'cp1252'"
    return DataError(
        f"{path}: cannot be decoded as {encoding}{where}. Pass the file's encoding: encoding={other} "
        f"(--encoding {other.strip(chr(39))}), or 'cp1252', 'utf-16'; or save the file as UTF-8."
    )


def _load_csv(path: Path, fmt: str, opts: _Options, k: int | None):
    import pandas as pd

    sep = "," if fmt == "csv" else "\t"
    # only empty cells are missing: "NA", "None" or "null" are kept as text
    kw = dict(sep=sep, encoding=opts.encoding, keep_default_na=False, na_values=[""])
    try:
        if k is None:
            df = pd.read_csv(path, **kw)
            total = len(df)
        else:
            df, total = _stream_sample_csv(pd.read_csv(path, chunksize=_CHUNK_ROWS, **kw), k, opts.seed)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no header and no rows.") from None
    except UnicodeDecodeError as e:
        raise _decode_error(path, opts.encoding, e) from None
    except (pd.errors.ParserError, ValueError, OSError) as e:
        raise DataError(
            f"{path}: cannot be read as {fmt.upper()} ({_first_line(e)}). Check the separator "
            f"({'a comma' if fmt == 'csv' else 'a tab'} for .{fmt}) and the quoting of fields that hold it."
        ) from None
    cols = [str(c) for c in df.columns]
    if len(cols) == 1:
        for ch, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars"), (",", "commas")):
            if ch != sep and ch in cols[0]:
                want = "a .tsv file" if ch == "\t" else f"a file separated by {sep!r}"
                raise DataError(
                    f"{path}: one column {cols[0]!r}: the header looks separated by {name}, but a .{fmt} file is "
                    f"read as {want}. Save it with {sep!r} separators (or a .tsv suffix for tabs)."
                )
    if total == 0:
        raise DataError(f"{path}: a header (columns: {', '.join(cols)}) but no rows.")
    return df, total


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _stream_sample_csv(reader, k: int, seed: int):
    """A uniform seeded sample of ``k`` rows from chunks (bottom-k of random keys, as ``_sample_positions``), in
    file order, and the row count."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    kept = None
    kept_keys = np.empty(0)
    total = 0
    with reader:
        for chunk in reader:
            keys = rng.random(len(chunk))
            total += len(chunk)
            cand = chunk if kept is None else pd.concat([kept, chunk])
            ck = keys if kept is None else np.concatenate([kept_keys, keys])
            if len(cand) > k:
                sel = np.argpartition(ck, k - 1)[:k]
                cand, ck = cand.iloc[sel], ck[sel]
            kept, kept_keys = cand, ck
    if kept is None:
        raise pd.errors.EmptyDataError("no rows")
    return kept.sort_index(), total


def _random_keys(rng: np.random.Generator) -> Iterator[float]:
    while True:
        yield from rng.random(4096).tolist()


def _load_json(path: Path, fmt: str, opts: _Options, k: int | None):
    import pandas as pd

    try:
        with open(path, encoding=opts.encoding) as f:
            head = f.read(1024).lstrip("\ufeff \t\r\n")
            f.seek(0)
            if fmt == "json" and head.startswith("["):
                records, rows = _json_array(path, f.read())
                total = len(records)
                pos = _sample_positions(total, k, opts.seed)
                if pos is not None:
                    records, rows = [records[i] for i in pos], [rows[i] for i in pos]
            else:
                records, rows, total = _json_lines(path, f, k, opts.seed)
    except UnicodeDecodeError as e:
        raise _decode_error(path, opts.encoding, e) from None
    if total == 0:
        raise DataError(f"{path}: no rows (no JSON objects in the file).")
    df = pd.DataFrame.from_records(records, index=rows)
    return df, total


def _json_array(path: Path, text: str) -> tuple[list[dict], list[int]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}).") from None
    bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(
            f"{path}: item {bad} of the JSON array is a {type(data[bad]).__name__}, not an object; {_JSON_LAYOUT}."
        )
    return data, list(range(len(data)))


_JSONL_LAYOUT = 'JSON Lines holds one JSON object per line: {"text": "...", "label": "..."}'
_JSON_LAYOUT = (
    'a .json data file is a list of objects, one per row ([{"text": "...", "label": "..."}, ...]), or JSON Lines'
)


def _parse_json_line(path: Path, lineno: int, line: str) -> dict:
    layout = _JSON_LAYOUT if path.suffix.lower() == ".json" else _JSONL_LAYOUT
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {lineno} is not valid JSON ({e.msg} at column {e.colno}); {layout}.") from None
    if not isinstance(rec, dict):
        raise DataError(f"{path}: line {lineno} holds a JSON {type(rec).__name__}, not an object; {layout}.")
    return rec


def _json_lines(path: Path, f, k: int | None, seed: int) -> tuple[list[dict], list[int], int]:
    """Records (all, or a seeded bottom-k sample kept while the lines stream), their row numbers, the row count."""
    if k is None:
        records, rows = [], []
        for lineno, line in enumerate(f, 1):
            if line.strip():
                records.append(_parse_json_line(path, lineno, line))
                rows.append(len(rows))
        return records, rows, len(rows)
    keys = _random_keys(np.random.default_rng(seed))
    heap: list[tuple[float, int, int, str]] = []  # (-key, row, line number, line): the k smallest keys
    total = 0
    for lineno, line in enumerate(f, 1):
        if not line.strip():
            continue
        key = next(keys)
        if len(heap) < k:
            heapq.heappush(heap, (-key, total, lineno, line))
        elif key < -heap[0][0]:
            heapq.heapreplace(heap, (-key, total, lineno, line))
        total += 1
    kept = sorted(heap, key=lambda t: t[1])
    return [_parse_json_line(path, n, line) for _, _, n, line in kept], [r for _, r, _, _ in kept], total


def _load_parquet(path: Path, opts: _Options, k: int | None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        total = pf.metadata.num_rows
        pos = _sample_positions(total, k, opts.seed)
        if pos is None:
            table = pf.read()
            rows = np.arange(total)
        else:
            parts, offset = [], 0
            for batch in pf.iter_batches(batch_size=_BATCH_ROWS):
                lo, hi = np.searchsorted(pos, [offset, offset + batch.num_rows])
                if hi > lo:
                    parts.append(batch.take(pa.array(pos[lo:hi] - offset)))
                offset += batch.num_rows
            table = pa.Table.from_batches(parts, schema=pf.schema_arrow)
            rows = pos
        df = table.to_pandas()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot be read as Parquet ({_first_line(e)}). Is it a Parquet file?") from None
    if total == 0:
        raise DataError(f"{path}: no rows (columns: {', '.join(map(str, pf.schema_arrow.names))}).")
    df.index = rows
    return df, total


# ---------------------------------------------------------------------------------------- frame -> Dataset


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, str) and not v.strip():
        return True
    return type(v).__name__ in ("NAType", "NaTType")


def _resolve(name: str, cols: Sequence[str], role: str, param: str, src: str) -> str:
    if name in cols:
        return name
    lower = {c.lower(): c for c in cols}
    close = [lower[name.lower()]] if name.lower() in lower else difflib.get_close_matches(name, cols, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DataError(
        f"{src}: no column {name!r} for the {role} ({param}=).{hint} The columns are: {', '.join(map(repr, cols))}."
    )


def _find(cols: Sequence[str], names: Sequence[str], exclude: set[str]) -> str | None:
    lower = {}
    for c in cols:
        lower.setdefault(c.lower(), c)
    for n in names:
        c = lower.get(n.lower())
        if c is not None and c not in exclude:
            return c
    return None


def _values_are_text(values: Sequence[Any]) -> bool:
    vals = [v for v in values[:1000] if not _is_missing(v)]
    return bool(vals) and all(isinstance(v, str) for v in vals)


def _looks_like_image(v: Any) -> bool:
    if isinstance(v, (bytes, bytearray)):
        return True
    if isinstance(v, dict):
        return bool(v.get("bytes")) or (isinstance(v.get("path"), str) and _looks_like_image(v["path"]))
    if isinstance(v, (str, Path)):
        return Path(str(v).strip()).suffix.lower() in IMAGE_SUFFIXES
    return type(v).__module__.startswith("PIL")


def _values_are_images(values: Sequence[Any]) -> bool:
    vals = [v for v in values[:50] if not _is_missing(v)]
    return bool(vals) and all(_looks_like_image(v) for v in vals)


def _image_feature_columns(features: dict) -> list[str]:
    return [c for c, f in features.items() if type(f).__name__ == "Image"]


def _from_frame(
    df,
    *,
    src: str,
    fmt: str,
    opts: _Options,
    digest: str,
    n_total: int,
    notes: list[str],
    base: Path | None,
    features: dict | None = None,
    fixed_split: np.ndarray | None = None,
) -> Dataset:
    """A table (already read or sampled; index = row numbers in the source) -> a Dataset."""
    df.columns = [str(c) for c in df.columns]
    cols = list(df.columns)
    feats = features or {}
    notes = list(notes)
    columns: dict[str, str] = {}
    detected: list[str] = []
    if len(df) == 0:
        raise DataError(f"{src}: no rows (columns: {', '.join(cols)}).")

    def col_values(c: str) -> list[Any]:
        return df[c].tolist()

    # columns the user named for a role are never detected for another
    named = {c for c in (opts.text_column, opts.image_column, opts.split_column, opts.group_column) if c}
    named |= set(opts.series_columns or ())
    given = [opts.text_column, opts.image_column, opts.label_column, opts.split_column, opts.group_column]
    given += list(opts.series_columns or ())
    twice = sorted({c for c in given if c is not None and given.count(c) > 1})
    if twice:
        raise DataError(f"{src}: the columns {twice} are named for more than one role (text, image, label, ...).")
    label = _resolve(opts.label_column, cols, "label", "label_column", src) if opts.label_column else None
    if label is None:
        label = _find(cols, _LABEL_NAMES, set(named))
        if label is None:
            label = next((c for c, f in feats.items() if type(f).__name__ == "ClassLabel" and c not in named), None)
        if label is not None:
            detected.append(f"label column: {label!r}")
    split = _resolve(opts.split_column, cols, "split", "split_column", src) if opts.split_column else None
    if split is None and fixed_split is None:
        split = _find(cols, _SPLIT_NAMES, {label, *named} - {None})
        if split is not None:
            detected.append(f"split column: {split!r}")
    group = _resolve(opts.group_column, cols, "window id", "group_column", src) if opts.group_column else None
    reserved = {c for c in (label, split, group, *named) if c}

    kind = opts.kind
    text_col = image_col = None
    if opts.text_column:
        text_col = _resolve(opts.text_column, cols, "text", "text_column", src)
    if opts.image_column:
        image_col = _resolve(opts.image_column, cols, "image", "image_column", src)
    if kind is None:
        if opts.series_columns or opts.group_column or opts.window:
            kind = "series"
        elif image_col:
            kind = "image"
        elif text_col:
            kind = "text"
        else:
            named = _find(cols, _TEXT_NAMES, reserved)
            if named is not None and _values_are_text(col_values(named)):
                kind, text_col = "text", named
            else:
                image_col = _detect_image_column(df, cols, feats, reserved)
                if image_col is not None:
                    kind = "image"
                    detected.append(f"image column: {image_col!r}")
                else:
                    text_col = _longest_text_column(df, cols, reserved)
                    if text_col is None:
                        raise DataError(
                            f"{src}: cannot tell what the data is: no text column (looked for "
                            f"{', '.join(_TEXT_NAMES)}, or any column of strings), no column of image paths and "
                            f"no series_columns=. The columns are: {', '.join(map(repr, cols))}. Name them: "
                            "text_column=, image_column=, or series_columns= with group_column= or window=."
                        )
                    kind = "text"
            if text_col is not None:
                detected.append(f"text column: {text_col!r}")
            detected.insert(0, f"kind: {kind!r}")
    elif kind in ("text", "documents") and text_col is None:
        text_col = _find(cols, _TEXT_NAMES, reserved) or _longest_text_column(df, cols, reserved)
        if text_col is None:
            raise DataError(
                f"{src}: no text column (looked for {', '.join(_TEXT_NAMES)}, or any column of strings). The "
                f"columns are: {', '.join(map(repr, cols))}. Name it with text_column=."
            )
        detected.append(f"text column: {text_col!r}")
    elif kind == "image" and image_col is None:
        image_col = _detect_image_column(df, cols, feats, reserved)
        if image_col is None:
            raise DataError(
                f"{src}: no image column (looked for {', '.join(_IMAGE_NAMES)}: paths of "
                f"{', '.join(IMAGE_SUFFIXES)} files, or image bytes). The columns are: {', '.join(map(repr, cols))}. "
                "Name it with image_column=."
            )
        detected.append(f"image column: {image_col!r}")

    if kind == "series":
        if detected:
            notes.insert(0, "detected " + ", ".join(detected) + " (name others with the column options)")
        return _series_from_frame(df, src, fmt, opts, digest, n_total, notes, label, split, group, detected)

    fields: dict[str, Any] = {}
    keep = None
    if kind == "image":
        assert image_col is not None
        columns["image"] = image_col
        images, keep, bad_notes = _images_from_values(col_values(image_col), df.index, base, src, image_col, opts)
        notes += bad_notes
        fields["images"] = images
    else:
        assert text_col is not None
        columns["text"] = text_col
        texts = col_values(text_col)
        _check_missing(texts, df.index, src, f"text column {text_col!r}")
        fields["texts"] = [v if isinstance(v, str) else str(v) for v in texts]
    if keep is not None:
        df = df[keep]
    if kind != "documents":
        if label is not None:
            columns["label"] = label
            fields["labels"], fields["label_names"] = _labels(
                df[label].tolist(), df.index, src, label, feats.get(label)
            )
        else:
            notes.append(
                f"no label column (looked for {', '.join(_LABEL_NAMES)}): the data has no labels; name one with "
                "label_column="
            )
    if fixed_split is not None:
        fields["split"] = fixed_split if keep is None else fixed_split[keep]
        columns["split"] = "(the data set's splits)"
    elif split is not None:
        sp = _split_values(df[split].tolist(), df.index, src, split, explicit=bool(opts.split_column), notes=notes)
        if sp is not None:
            columns["split"] = split
            fields["split"] = sp
    if detected:
        notes.insert(0, "detected " + ", ".join(detected) + " (name others with the column options)")
    return _finish(kind, src, fmt, digest, opts, columns, notes, n_rows_total=n_total, **fields)


def _detect_image_column(df, cols: list[str], feats: dict, reserved: set[str]) -> str | None:
    for c in _image_feature_columns(feats):
        if c not in reserved:
            return c
    named = _find(cols, _IMAGE_NAMES, reserved)
    if named is not None and _values_are_images(df[named].tolist()):
        return named
    for c in cols:
        if c not in reserved and _values_are_images(df[c].tolist()):
            return c
    return None


def _longest_text_column(df, cols: list[str], reserved: set[str]) -> str | None:
    best, best_len = None, -1.0
    for c in cols:
        if c in reserved:
            continue
        vals = df[c].tolist()
        if not _values_are_text(vals) or _values_are_images(vals):
            continue
        lengths = [len(v) for v in vals[:5000] if isinstance(v, str)]
        mean = sum(lengths) / max(1, len(lengths))
        if mean > best_len:
            best, best_len = c, mean
    return best


def _check_missing(values: Sequence[Any], rows, src: str, what: str) -> None:
    missing = [i for i, v in enumerate(values) if _is_missing(v)]
    if missing:
        raise DataError(
            f"{src}: {len(missing)} rows have no value in the {what} (first at row {rows[missing[0]]}, counting data "
            "rows from 0). Fill or drop them."
        )


def _labels(values: list[Any], rows, src: str, column: str, feature: Any = None) -> tuple[np.ndarray, tuple]:
    names = getattr(feature, "names", None) if type(feature).__name__ == "ClassLabel" else None
    out: list[Any] = []
    for v in values:
        if _is_missing(v):
            out.append(None)
        elif names is not None and isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out.append(names[v] if 0 <= v < len(names) else None)
        elif isinstance(v, (float, np.floating)):
            if not float(v).is_integer():
                raise DataError(
                    f"{src}: the label column {column!r} holds non-integer numbers (e.g. {v!r}): classification "
                    "needs class labels (names or integer ids). Name another column with label_column=."
                )
            out.append(int(v))
        elif isinstance(v, (list, dict, bytes, np.ndarray)):
            raise DataError(
                f"{src}: the label column {column!r} holds {type(v).__name__} values: a label is one name or "
                "integer id per row. Name another column with label_column=."
            )
        else:
            out.append(v)
    _check_missing(out, rows, src, f"label column {column!r}")
    return encode_labels(out, src, column)


def _split_values(
    values: list[Any], rows, src: str, column: str, *, explicit: bool, notes: list[str]
) -> np.ndarray | None:
    """Per row "train" / "eval" from a split column; an unknown value is an error when the user named the column."""
    out = []
    unknown: list[str] = []
    for v in values:
        s = "" if _is_missing(v) else str(v).strip().lower()
        if s in _TRAIN_VALUES:
            out.append("train")
        elif s in _EVAL_VALUES:
            out.append("eval")
        else:
            out.append(None)
            if str(v) not in unknown:
                unknown.append(str(v))
    if not unknown:
        return np.array(out, dtype=object)
    accepted = f"train ({', '.join(_TRAIN_VALUES)}) or eval ({', '.join(_EVAL_VALUES)})"
    if explicit:
        first = rows[out.index(None)]
        raise DataError(
            f"{src}: the split column {column!r} holds values that are not a split: {unknown[:10]} (first at row "
            f"{first}). Each row must say {accepted}."
        )
    notes.append(
        f"the column {column!r} holds {unknown[:5]}, not train/test values: not used as a split (name a split "
        "column with split_column=)"
    )
    return None


# ------------------------------------------------------------------------------------------------- images


def _verify_image(x: Any) -> tuple[tuple[int, int] | None, str]:
    """(width, height) of a readable image, else (None, why)."""
    import io

    from PIL import Image

    try:
        if isinstance(x, Image.Image):
            return x.size, ""
        if isinstance(x, dict):
            x = x.get("bytes") or x.get("path")
        if isinstance(x, (bytes, bytearray)):
            fh: Any = io.BytesIO(x)
        else:
            p = Path(x)
            if not p.is_file():
                return None, "no such file"
            fh = p
        with Image.open(fh) as im:
            size = im.size
            im.verify()
        return size, ""
    except Exception as e:  # PIL raises several types for unreadable files
        return None, _first_line(e)[:80]


def _bad_files_error(where: str, bad: list[tuple[str, str]], what: str) -> DataError:
    shown = "; ".join(f"{name} ({why})" for name, why in bad[:10])
    more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
    return DataError(
        f"{where}: {len(bad)} {what}: {shown}{more}. Remove or fix them, or pass on_bad_files='skip' "
        "(--on-bad-files skip) to skip them."
    )


def _size_note(sizes: Counter) -> list[str]:
    if len(sizes) <= 1:
        return []
    eg = ", ".join(f"{w}x{h} x{c}" for (w, h), c in sizes.most_common(3))
    return [f"images have {len(sizes)} sizes (e.g. {eg}): each is resized to the model's input"]


def _images_from_values(values: list[Any], rows, base: Path | None, src: str, column: str, opts: _Options):
    """Images of a table's column (paths resolve against the table's folder), verified; (images, keep, notes)."""
    images: list[Any] = []
    bad: list[tuple[str, str]] = []
    keep = np.ones(len(values), dtype=bool)
    sizes: Counter = Counter()
    for i, v in enumerate(values):
        if _is_missing(v):
            keep[i] = False
            bad.append((f"row {rows[i]}", "empty"))
            images.append(None)
            continue
        if isinstance(v, (str, Path)):
            p = Path(str(v).strip()).expanduser()
            v = p if p.is_absolute() or base is None else base / p
        size, why = _verify_image(v)
        if size is None:
            keep[i] = False
            name = str(v) if isinstance(v, Path) else f"row {rows[i]}"
            bad.append((name, why))
        else:
            sizes[size] += 1
        images.append(v)
    notes = []
    if bad:
        if opts.on_bad_files == "stop":
            raise _bad_files_error(f"{src} (column {column!r})", bad, "images cannot be read")
        notes.append(f"skipped {len(bad)} unreadable images: " + ", ".join(n for n, _ in bad[:10]))
    if not keep.any():
        raise DataError(f"{src}: none of the images of column {column!r} can be read.")
    notes += _size_note(sizes)
    return [im for im, k in zip(images, keep) if k], (None if keep.all() else keep), notes


def _read_image_folder(root: Path, files: list[Path], opts: _Options) -> Dataset:
    src = str(root)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p.relative_to(root)))
    loose = [p for p in files if p.parent == root]
    if not subdirs:
        raise DataError(
            f"{root}: {len(loose)} files but no class subfolders. {_IMAGE_LAYOUT}: the labels are the subfolder names."
        )
    split_layout = all(d.name.lower() in (*_TRAIN_VALUES, *_EVAL_VALUES) for d in subdirs) and all(
        any(c.is_dir() for c in d.iterdir()) for d in subdirs
    )
    notes: list[str] = []
    entries: list[tuple[Path, str, str | None]] = []  # (file, class, split)
    others: list[tuple[str, str]] = []
    for p in files:
        parts = p.relative_to(root).parts
        if split_layout:
            if len(parts) < 3:
                continue  # files directly in train/ or test/: not in a class folder
            cls, sp = parts[1], ("train" if parts[0].lower() in _TRAIN_VALUES else "eval")
        else:
            if len(parts) < 2:
                continue
            cls, sp = parts[0], None
        if p.suffix.lower() in IMAGE_SUFFIXES:
            entries.append((p, cls, sp))
        else:
            others.append((p.relative_to(root).as_posix(), f"not an image: {p.suffix or 'no suffix'}"))
    n_loose = len([p for p in files if len(p.relative_to(root).parts) < (3 if split_layout else 2)])
    if n_loose:
        notes.append(f"{n_loose} files outside the class folders were ignored")
    if not entries:
        raise DataError(
            f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in its subfolders "
            f"({', '.join(d.name for d in subdirs[:10])}). {_IMAGE_LAYOUT}."
        )
    n_total = len(entries)
    pos = _sample_positions(n_total, opts.max_rows, opts.seed)
    if pos is not None:
        entries = [entries[i] for i in pos]
        notes.append(_sampled_note(len(entries), n_total, opts.seed, "images"))
    bad = list(others)
    ok: list[tuple[Path, str, str | None]] = []
    sizes: Counter = Counter()
    for p, cls, sp in entries:
        size, why = _verify_image(p)
        if size is None:
            bad.append((p.relative_to(root).as_posix(), why))
        else:
            ok.append((p, cls, sp))
            sizes[size] += 1
    if bad:
        if opts.on_bad_files == "stop":
            raise _bad_files_error(src, bad, "files are not readable images")
        shown = ", ".join(n for n, _ in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        notes.append(f"skipped {len(bad)} files that are not readable images: {shown}")
    if not ok:
        raise DataError(f"{root}: none of its {len(entries)} image files can be read.")
    notes += _size_note(sizes)
    labels, names = encode_labels([cls for _, cls, _ in ok], src, "class folder")
    columns = {"image": "(files)", "label": "(class folder names)"}
    split = None
    if split_layout:
        split = np.array([sp for _, _, sp in ok], dtype=object)
        columns["split"] = "(train/ and test/ folders)"
    return _finish(
        "image",
        src,
        "image-folder",
        _hash_tree(root, files),
        opts,
        columns,
        notes,
        images=[p for p, _, _ in ok],
        labels=labels,
        label_names=names,
        split=split,
        n_rows_total=n_total,
    )


# ---------------------------------------------------------------------------------------------- documents


def _decode_text(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise _decode_error(path, encoding, e, exact=True) from None
    return text.lstrip("\ufeff")


def _chunks(text: str) -> list[str]:
    """One document, or paragraph chunks of about ``_CHUNK_WORDS`` words when it is longer than ``_LONG_DOC_WORDS``."""
    if len(text.split()) <= _LONG_DOC_WORDS:
        return [text]
    out: list[str] = []
    cur: list[str] = []
    n = 0
    for para in re.split(r"\n\s*\n", text):
        words = para.split()
        if not words:
            continue
        if len(words) > _CHUNK_WORDS:  # one huge paragraph (no blank lines): cut it by words
            if cur:
                out.append("\n\n".join(cur))
                cur, n = [], 0
            out += [" ".join(words[i : i + _CHUNK_WORDS]) for i in range(0, len(words), _CHUNK_WORDS)]
            continue
        cur.append(para.strip())
        n += len(words)
        if n >= _CHUNK_WORDS:
            out.append("\n\n".join(cur))
            cur, n = [], 0
    if cur:
        out.append("\n\n".join(cur))
    return out


def _split_note(name: str, text: str, n: int) -> str:
    return (
        f"{name}: {len(text.split())} words, split into {n} chunks of about {_CHUNK_WORDS} words (paragraphs kept "
        "whole) so perplexity is measured on several documents"
    )


def _read_text_file(path: Path, fmt: str, opts: _Options) -> Dataset:
    _check_kind(str(path), f"a {fmt} file", opts.kind, ("documents",))
    text = _decode_text(path, opts.encoding)
    if not text.strip():
        raise DataError(f"{path}: the file holds only whitespace: there is no text to read.")
    docs = _chunks(text)
    notes = [_split_note(path.name, text, len(docs))] if len(docs) > 1 else []
    n_total = len(docs)
    pos = _sample_positions(n_total, opts.max_rows, opts.seed)
    if pos is not None:
        docs = [docs[i] for i in pos]
        notes.append(_sampled_note(len(docs), n_total, opts.seed, "chunks"))
    return _finish(
        "documents", str(path), fmt, _hash_file(path), opts, {"text": "(file)"}, notes, texts=docs, n_rows_total=n_total
    )


def _read_text_folder(root: Path, files: list[Path], opts: _Options, *, labelled: bool) -> Dataset:
    src = str(root)
    texts_files = [p for p in files if p.suffix.lower() in TEXT_SUFFIXES]
    notes: list[str] = []
    ignored = len(files) - len(texts_files)
    if ignored:
        notes.append(f"{ignored} files that are not text ({', '.join(TEXT_SUFFIXES)}) were ignored")
    if labelled:
        loose = [p for p in texts_files if p.parent == root]
        if loose or not any(p.parent != root for p in texts_files):
            raise DataError(
                f"{root}: text classification from a folder needs one subfolder per class holding its text files "
                f"(FOLDER/pos/1.txt, FOLDER/neg/2.txt); {len(loose)} text files are not in a class folder. For "
                "documents without labels pass kind='documents'."
            )
    pos = _sample_positions(len(texts_files), opts.max_rows if labelled else None, opts.seed)
    n_total = len(texts_files)
    if pos is not None:
        texts_files = [texts_files[i] for i in pos]
        notes.append(_sampled_note(len(texts_files), n_total, opts.seed, "files"))
    docs: list[str] = []
    classes: list[str] = []
    bad: list[tuple[str, str]] = []
    empty = n_long = n_pieces = 0
    for p in texts_files:
        rel = p.relative_to(root).as_posix()
        try:
            text = _decode_text(p, opts.encoding)
        except DataError:
            bad.append((rel, f"not {opts.encoding}"))
            continue
        if not text.strip():
            empty += 1
            continue
        pieces = [text.strip()] if labelled else _chunks(text)
        if len(pieces) > 1:
            n_long += 1
            n_pieces += len(pieces)
        docs += pieces
        classes += [p.relative_to(root).parts[0]] * len(pieces)
    if bad:
        if opts.on_bad_files == "stop":
            err = _bad_files_error(src, bad, f"text files cannot be decoded as {opts.encoding}")
            raise DataError(f"{err} Or pass their encoding with encoding= (--encoding), e.g. 'latin-1'.")
        notes.append(f"skipped {len(bad)} files not decodable as {opts.encoding}: " + ", ".join(n for n, _ in bad[:10]))
    if empty:
        notes.append(f"skipped {empty} empty text files")
    if n_long:
        notes.append(
            f"{n_long} files longer than {_LONG_DOC_WORDS} words were split into {n_pieces} chunks of about "
            f"{_CHUNK_WORDS} words (paragraphs kept whole) so perplexity is measured on several documents"
        )
    if not docs:
        raise DataError(f"{root}: no text in its {len(texts_files)} text files.")
    digest = _hash_tree(root, files)
    if labelled:
        labels, names = encode_labels(classes, src, "class folder")
        cols = {"text": "(files)", "label": "(class folder names)"}
        return _finish(
            "text", src, "text-folder", digest, opts, cols, notes, texts=docs, labels=labels, label_names=names,
            n_rows_total=n_total,
        )  # fmt: skip
    n_docs = len(docs)
    pos = _sample_positions(n_docs, opts.max_rows, opts.seed)
    if pos is not None:
        docs = [docs[i] for i in pos]
        notes.append(_sampled_note(len(docs), n_docs, opts.seed, "documents"))
    return _finish(
        "documents", src, "text-folder", digest, opts, {"text": "(files)"}, notes, texts=docs, n_rows_total=n_docs
    )


# ------------------------------------------------------------------------------------------------- series


def _series_from_frame(
    df,
    src: str,
    fmt: str,
    opts: _Options,
    digest: str,
    n_total: int,
    notes: list[str],
    label: str | None,
    split: str | None,
    group: str | None,
    detected: list[str],
) -> Dataset:
    import pandas as pd

    cols = list(df.columns)
    reserved = {c for c in (label, split, group) if c}
    if opts.series_columns:
        channels = [_resolve(c, cols, "series channel", "series_columns", src) for c in opts.series_columns]
    else:
        channels = [c for c in cols if c not in reserved and pd.api.types.is_numeric_dtype(df[c])]
        if not channels:
            raise DataError(
                f"{src}: no numeric columns to read as series channels. The columns are: "
                f"{', '.join(map(repr, cols))}. Name them with series_columns= ('ax,ay,az')."
            )
        notes.append(f"series channels: all numeric columns {channels} (choose with series_columns=)")
    clash = [c for c in channels if c in reserved]
    if clash:
        raise DataError(f"{src}: the columns {clash} are named both as series channels and as label/split/group.")
    if group is None and opts.window is None:
        raise DataError(
            f"{src}: series from a table need group_column= (--group-column: the rows of one id form one window) "
            f"or window=N (--window: consecutive rows cut into windows of N rows). The columns are: "
            f"{', '.join(map(repr, cols))}."
        )
    rows = np.asarray(df.index)
    mats = []
    for c in channels:
        raw = df[c]
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad_num = np.flatnonzero(np.isnan(num) & ~raw.isna().to_numpy())
        if len(bad_num):
            i = bad_num[0]
            if not _is_float_text(raw.iloc[i]):
                raise DataError(
                    f"{src}: the series column {c!r} holds a value that is not a number at row {rows[i]} "
                    f"({raw.iloc[i]!r}). Series channels must be numbers."
                )
        nonfinite = np.flatnonzero(~np.isfinite(num))
        if len(nonfinite):
            i = nonfinite[0]
            what = "an infinite value" if np.isinf(num[i]) else "a missing / NaN value"
            raise DataError(
                f"{src}: the series column {c!r} has {what} at row {rows[i]} (counting data rows from 0; "
                f"{len(nonfinite)} such rows in all). Fill or drop them before reading."
            )
        mats.append(num)
    mat = np.stack(mats, axis=1)  # (rows, channels)
    lab = None
    if label is not None:
        lab = df[label].tolist()
        _check_missing(lab, rows, src, f"label column {label!r}")
        lab = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip() for v in lab]
    sp = None
    if split is not None:
        sp = _split_values(df[split].tolist(), rows, src, split, explicit=bool(opts.split_column), notes=notes)
        if sp is None:
            split = None
    pieces: list[np.ndarray] = []  # row positions of each window
    dropped = 0
    if group is not None:
        gvals = df[group]
        if gvals.isna().any():
            i = int(np.flatnonzero(gvals.isna().to_numpy())[0])
            raise DataError(
                f"{src}: the group column {group!r} is empty at row {rows[i]}: every row needs a window id."
            )
        codes, uniques = pd.factorize(gvals, sort=False)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        groups = np.split(order, bounds)
        for g, idx in zip(uniques, groups):
            for name, vals in (("label", lab), ("split", None if sp is None else sp.tolist())):
                if vals is not None and len({vals[i] for i in idx}) > 1:
                    found = sorted({str(vals[i]) for i in idx})
                    raise DataError(
                        f"{src}: the window {g!r} (group column {group!r}) has the {name}s {found[:5]}: every row "
                        f"of a window must have one {name}. Fix those rows, or give each part its own id."
                    )
            if opts.window is None:
                pieces.append(idx)
            else:
                n_full = len(idx) // opts.window
                pieces += [idx[j * opts.window : (j + 1) * opts.window] for j in range(n_full)]
                dropped += len(idx) - n_full * opts.window
        if opts.window is None:
            lengths = Counter(len(p) for p in pieces)
            if len(lengths) > 1:
                eg = ", ".join(f"{n} rows (x{c})" for n, c in sorted(lengths.items(), key=lambda t: -t[1])[:6])
                raise DataError(
                    f"{src}: the windows of group column {group!r} have different lengths: {eg}. A series model "
                    f"needs windows of one length: pass window=N (--window N) to cut each group into windows of N "
                    f"rows (e.g. window={min(lengths)}), or make the groups equally long."
                )
    else:
        assert opts.window is not None
        keys = [(None if lab is None else lab[i], None if sp is None else sp[i]) for i in range(len(rows))]
        start = 0
        runs = []
        for i in range(1, len(keys) + 1):
            if i == len(keys) or keys[i] != keys[start]:
                runs.append(np.arange(start, i))
                start = i
        for idx in runs:
            n_full = len(idx) // opts.window
            pieces += [idx[j * opts.window : (j + 1) * opts.window] for j in range(n_full)]
            dropped += len(idx) - n_full * opts.window
        if not pieces:
            longest = max(len(r) for r in runs)
            raise DataError(
                f"{src}: no window of {opts.window} rows fits: the longest run of rows with one label is {longest} "
                f"rows. Pass a smaller window= (at most {longest})."
            )
    if not pieces:
        raise DataError(f"{src}: no window of {opts.window} rows fits in any group of {group!r}.")
    if dropped:
        notes.append(
            f"{dropped} trailing rows that do not fill a window of {opts.window} rows were dropped"
            + (" (at the end of each run of one label)" if group is None else " (at the end of each group)")
        )
    series = np.stack([mat[idx].T for idx in pieces]).astype(np.float32)
    columns = {"series": ",".join(channels)}
    fields: dict[str, Any] = {}
    if group is not None:
        columns["group"] = group
    if lab is not None:
        assert label is not None
        columns["label"] = label
        fields["labels"], fields["label_names"] = encode_labels([lab[p[0]] for p in pieces], src, label)
    else:
        notes.append(
            f"no label column (looked for {', '.join(_LABEL_NAMES)}): the data has no labels; name one with "
            "label_column="
        )
    if sp is not None:
        columns["split"] = str(split)
        fields["split"] = np.array([sp[p[0]] for p in pieces], dtype=object)
    notes.append(
        f"{len(pieces)} windows of {series.shape[2]} time steps x {len(channels)} channels from {len(rows)} rows"
    )
    n_windows = len(pieces)
    pos = _sample_positions(n_windows, opts.max_rows, opts.seed)
    if pos is not None:
        series = series[pos]
        fields = {k: (v[pos] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
        notes.append(_sampled_note(len(pos), n_windows, opts.seed, "windows"))
    return _finish(
        "series",
        src,
        fmt,
        digest,
        opts,
        columns,
        notes,
        series=series,
        channel_names=tuple(channels),
        n_rows_total=n_windows,
        **fields,
    )


def _is_float_text(v: Any) -> bool:
    try:
        float(str(v))
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------------- npz


def _read_npz(path: Path, opts: _Options) -> Dataset:
    import zipfile

    src = str(path)
    _check_kind(src, "a .npz file", opts.kind, ("arrays", "series"))
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:  # never unpickle a user's file
            for name in z.files:
                try:
                    arrays[name] = z[name]
                except ValueError as e:
                    if "allow_pickle" in str(e) or "Object arrays" in str(e):
                        raise DataError(
                            f"{src}: the array {name!r} holds Python objects (dtype object), which would need "
                            "unpickling; the workbench never unpickles a data file. Save it with numeric or string "
                            "dtypes: np.savez(path, x=x.astype(np.float32), labels=np.asarray(labels, dtype=str))."
                        ) from None
                    raise
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(
            f"{src}: cannot be read as a NumPy .npz file ({_first_line(e)}). Write it with np.savez()."
        ) from None
    if not arrays:
        raise DataError(f"{src}: the .npz holds no arrays.")
    desc = ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in arrays.items())
    notes: list[str] = []
    columns: dict[str, str] = {}
    scalars = [k for k, v in arrays.items() if v.ndim == 0]
    if scalars:
        notes.append(f"scalar arrays {scalars} are not rows: ignored")
        arrays = {k: v for k, v in arrays.items() if v.ndim > 0}
    if opts.label_column:
        if opts.label_column not in arrays:
            close = difflib.get_close_matches(opts.label_column, list(arrays), n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{src}: no array {opts.label_column!r} for the labels (label_column=).{hint} The arrays are: {desc}."
            )
        label = opts.label_column
    else:
        label = next((n for n in _NPZ_LABEL_NAMES if n in arrays), None)
    labels = names = None
    if label is not None:
        lab = arrays.pop(label)
        if lab.ndim != 1:
            raise DataError(
                f"{src}: the labels array {label!r} has shape {lab.shape}: labels are one class per row (1-D). The "
                f"arrays are: {desc}."
            )
        if lab.dtype.kind == "f":
            if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
                raise DataError(
                    f"{src}: the labels array {label!r} holds non-integer numbers: classification needs class ids "
                    "(ints) or names (strings)."
                )
            lab = lab.astype(np.int64)
        if lab.dtype.kind not in "iubUS":
            raise DataError(f"{src}: the labels array {label!r} has dtype {lab.dtype}: give ints or strings.")
        values = [v.decode() if isinstance(v, bytes) else v for v in lab.tolist()]
        labels, names = encode_labels(values, src, label)
        columns["label"] = label
    else:
        notes.append(f"no labels array (looked for {', '.join(_NPZ_LABEL_NAMES)}): the data has no labels")
    if not arrays:
        raise DataError(f"{src}: the .npz holds only labels ({label!r}): there are no inputs. The arrays are: {desc}.")
    kind = opts.kind
    three_d = [k for k, v in arrays.items() if v.ndim == 3 and v.dtype.kind == "f"]
    if kind is None and len(three_d) == 1 and three_d[0] in _NPZ_SERIES_NAMES:
        kind = "series"
        notes.append(f"detected kind 'series' from the 3-D float array {three_d[0]!r} (N, channels, length)")
    kind = kind or "arrays"
    n = next(iter(arrays.values())).shape[0]
    fields: dict[str, Any] = {}
    if kind == "series":
        cands = [k for k, v in arrays.items() if v.ndim == 3 and v.dtype.kind in "fiu"]
        named = [k for k in cands if k in _NPZ_SERIES_NAMES]
        if len(cands) == 1:
            sname = cands[0]
        elif len(named) == 1:
            sname = named[0]
        else:
            raise DataError(
                f"{src}: series data needs one 3-D array (N, channels, length), named one of "
                f"{', '.join(_NPZ_SERIES_NAMES)} when there are several. The arrays are: {desc}."
            )
        series = arrays[sname].astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(series).all(axis=(1, 2)))
        if len(bad):
            raise DataError(
                f"{src}: the series array {sname!r} has NaN or infinite values (first in window {bad[0]}; "
                f"{len(bad)} windows in all). Fill or drop them."
            )
        others = [k for k in arrays if k != sname]
        if others:
            notes.append(f"arrays {others} are not used for series data")
        c = series.shape[1]
        if opts.series_columns and len(opts.series_columns) == c:
            channels = tuple(opts.series_columns)
        else:
            if opts.series_columns:
                raise DataError(
                    f"{src}: series_columns= names {len(opts.series_columns)} channels but {sname!r} has {c} "
                    f"(shape {series.shape})."
                )
            channels = tuple(f"channel_{i}" for i in range(c))
        columns["series"] = sname
        fields.update(series=series, channel_names=channels)
    else:
        sizes = {k: v.shape[0] for k, v in arrays.items()}
        if len(set(sizes.values())) > 1 or (labels is not None and len(labels) != n):
            raise DataError(
                f"{src}: the arrays have different first dimensions (rows): {desc}. Every array (and the labels) "
                "needs one row per example."
            )
        columns["arrays"] = ",".join(arrays)
        fields["arrays"] = arrays
    if labels is not None:
        rows_in = len(fields["series"]) if kind == "series" else n
        if len(labels) != rows_in:
            raise DataError(
                f"{src}: {len(labels)} labels ({label!r}) but {rows_in} rows of inputs. The arrays are: {desc}."
            )
        fields.update(labels=labels, label_names=names)
    n_rows = len(fields["series"]) if kind == "series" else n
    pos = _sample_positions(n_rows, opts.max_rows, opts.seed)
    if pos is not None:
        for key in ("series", "labels"):
            if key in fields:
                fields[key] = fields[key][pos]
        if "arrays" in fields:
            fields["arrays"] = {k: v[pos] for k, v in fields["arrays"].items()}
        notes.append(_sampled_note(len(pos), n_rows, opts.seed))
    return _finish(kind, src, "npz", _hash_file(path), opts, columns, notes, n_rows_total=n_rows, **fields)


# ------------------------------------------------------------------------------------ Hugging Face datasets


def _read_hf_folder(path: Path, opts: _Options) -> Dataset:
    import datasets

    _check_kind(str(path), "a Hugging Face datasets folder", opts.kind, ("text", "image", "series", "documents"))
    try:
        obj = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises FileNotFoundError, ValueError, ArrowInvalid, ... for a broken folder
        raise DataError(
            f"{path}: cannot be read as a Hugging Face datasets folder written by save_to_disk() ({_first_line(e)})."
        ) from None
    return _from_hf(obj, str(path), "hf-disk", opts, _hash_tree(path, _files_under(path)))


def _from_hf(obj: Any, src: str, fmt: str, opts: _Options, digest: str) -> Dataset:
    import datasets
    import pandas as pd

    notes: list[str] = []
    if isinstance(obj, datasets.DatasetDict):
        names = list(obj)
        ev = next((n for n in _HF_EVAL_SPLITS if n in obj), None)
        chosen: list[tuple[str, str | None]] = []
        if "train" in obj:
            chosen.append(("train", "train" if ev else None))
        if ev:
            chosen.append((ev, "eval" if "train" in obj else None))
        if not chosen:
            if len(names) != 1:
                raise DataError(
                    f"{src}: a DatasetDict with the splits {names}: none is named train or "
                    f"{' / '.join(_HF_EVAL_SPLITS)}. Rename them (DatasetDict({{'train': ..., 'test': ...}})) "
                    "and save_to_disk() again."
                )
            chosen = [(names[0], None)]
        ignored = [n for n in names if n not in {c for c, _ in chosen}]
        used = " + ".join(f"{n} ({len(obj[n])} rows{' as ' + r if r else ''})" for n, r in chosen)
        notes.append(f"splits used: {used}" + (f"; ignored: {', '.join(ignored)}" if ignored else ""))
        parts = [(obj[n], r) for n, r in chosen]
    elif isinstance(obj, datasets.Dataset):
        parts = [(obj, None)]
    else:
        raise DataError(f"{src}: holds a {type(obj).__name__}, not a datasets Dataset or DatasetDict.")
    features = dict(parts[0][0].features)
    total = sum(len(d) for d, _ in parts)
    if total == 0:
        raise DataError(f"{src}: no rows (columns: {', '.join(features)}).")
    pos = _sample_positions(total, None if opts.kind == "series" or opts.window else opts.max_rows, opts.seed)
    if pos is not None:
        notes.append(_sampled_note(len(pos), total, opts.seed))
    frames = []
    roles: list[str | None] = []
    offset = 0
    for d, role in parts:
        n_d = len(d)
        idx = np.arange(offset, offset + n_d)
        if pos is not None:
            idx = pos[(pos >= offset) & (pos < offset + n_d)]
            d = d.select((idx - offset).tolist())
        offset += n_d
        for col in _image_feature_columns(dict(d.features)):
            d = d.cast_column(col, datasets.Image(decode=False))  # {"bytes", "path"}: open_image decodes them
        frame = d.to_pandas()
        frame.index = idx
        frames.append(frame)
        roles += [role] * len(frame)
    df = pd.concat(frames) if len(frames) > 1 else frames[0]
    fixed = None
    if not opts.split_column and any(r is not None for r in roles):
        fixed = np.array(roles, dtype=object)
    return _from_frame(
        df,
        src=src,
        fmt=fmt,
        opts=opts,
        digest=digest,
        n_total=total,
        notes=notes,
        base=None,
        features=features,
        fixed_split=fixed,
    )


def hub_reachable(timeout: float = 4.0) -> bool:
    """True when the Hugging Face Hub answers an HTTPS request within ``timeout`` seconds (DNS and TLS included).

    Any HTTP answer counts (even an error status: the hub is there). A refused or timed-out connect, a failed name
    lookup or a TLS failure (e.g. a proxy that accepts every TCP connect but is not the hub) counts as offline.
    ``HF_ENDPOINT`` moves the probe to a mirror. The whole probe is bounded by a thread join, since name lookups
    ignore socket timeouts.
    """
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    result = [False]

    def probe() -> None:
        try:
            req = urllib.request.Request(endpoint + "/api/datasets?limit=1", method="HEAD")
            with urllib.request.urlopen(req, timeout=timeout):
                result[0] = True
        except urllib.error.HTTPError:
            result[0] = True  # the hub answered, with an error status
        except (OSError, ValueError):  # URLError, socket.timeout, ssl.SSLError are OSErrors
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return result[0]


def _offline_env() -> str | None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return var
    return None


def _read_hub(name: str, opts: _Options) -> Dataset:
    var = _offline_env()
    if var is not None or not hub_reachable():
        why = f"{var}=1 is set" if var else "the hub does not answer"
        raise OfflineError(
            f"Cannot read the data set {name!r}: there is no file or folder of that name here, and as a Hugging Face "
            f"Hub dataset id it needs the hub, which is unreachable ({why}). Use a local file ({_SUPPORTED.split('; or')[0]}) "
            "or a folder written by datasets' save_to_disk() on a machine that is online."
        )
    import datasets

    try:
        obj = datasets.load_dataset(name)
    except Exception as e:  # the hub raises many types (missing repo, gated, no data files, ...)
        raise DataError(f"Cannot load the Hugging Face Hub data set {name!r}: {_first_line(e)}") from None
    splits = obj.items() if isinstance(obj, datasets.DatasetDict) else [("data", obj)]
    ident = [name] + [f"{k}:{getattr(v, '_fingerprint', '')}" for k, v in splits]
    return _from_hf(obj, name, "hf-hub", opts, content_hash(*ident))
