"""The options every model-loading command shares: ``--data``, ``--eval-data``, ``--task`` and the column options."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..data.source import DATA_OPTIONS, TASK_KINDS

__all__ = ["add_data_arguments", "load_kwargs", "print_dataset"]


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {v}")
    return v


def add_data_arguments(s: argparse.ArgumentParser, n_eval: bool = True) -> None:
    """Add the data options (and ``--n-eval`` unless the command has its own) to a subcommand."""
    g = s.add_argument_group(
        "your data",
        "Score the model on your own data instead of its bundled set. Formats: CSV/TSV, JSON Lines, Parquet, a "
        "datasets save_to_disk folder or hub dataset id, an image folder (one subfolder per class), .npz, "
        "text/Markdown files. Columns are detected when not named; what was used is printed.",
    )
    g.add_argument("--data", default=None, metavar="PATH", help="your data file, folder or hub dataset id")
    g.add_argument(
        "--eval-data", default=None, metavar="PATH", help="your held-out set (default: a stratified split of --data)"
    )
    g.add_argument("--task", default=None, choices=list(TASK_KINDS), help="task kind (default: from the model)")
    g.add_argument("--text-column", default=None, metavar="C")
    g.add_argument("--label-column", default=None, metavar="C")
    g.add_argument("--image-column", default=None, metavar="C", help="a column of image paths or images")
    g.add_argument("--series-columns", default=None, metavar="C1,C2,...", help="sensor channels, one column each")
    g.add_argument("--split-column", default=None, metavar="C", help="a column saying train / eval (or test)")
    g.add_argument("--group-column", default=None, metavar="C", help="series: rows with one id form one window")
    g.add_argument("--window", type=_positive_int, default=None, metavar="N", help="series: rows per window")
    g.add_argument(
        "--on-bad-files",
        default=None,
        choices=("stop", "skip"),
        help="image folders: stop at an unreadable file (default) or skip it",
    )
    g.add_argument("--encoding", default=None, help="text encoding of your files (default utf-8)")
    if n_eval:
        s.add_argument("--n-eval", type=_positive_int, default=None, help="score on this many eval examples")


_KEYS = ("data", "eval_data", "task", *DATA_OPTIONS)


def load_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``load_model`` keyword arguments the command line gave (only those that are set)."""
    kw = {k: getattr(args, k, None) for k in (*_KEYS, "n_eval")}
    return {k: v for k, v in kw.items() if v is not None}


def print_dataset(model: Any, file=None) -> None:
    """One paragraph on the data a model is scored on: source, rows, columns, labels, hash and notes."""
    file = file if file is not None else sys.stderr  # looked up per call: a redirected stderr is honoured
    info = getattr(model, "info", None) or {}
    for note in info.get("notes") or []:  # e.g. n_eval larger than the eval split: what was used instead
        print(f"note: {note}", file=file)
    d = info.get("dataset")
    if not d:
        return
    rows = d.get("rows")
    line = f"data: {d.get('source')} ({d.get('format', d.get('kind', ''))}, {rows} rows"
    if d.get("rows_in_source") and d.get("rows_in_source") != rows:
        line += f" of {d['rows_in_source']}"
    line += ")"
    if d.get("columns"):
        line += "; " + ", ".join(f"{role} = {col!r}" for role, col in d["columns"].items())
    if d.get("labels"):
        line += "; labels: " + ", ".join(f"{k} {v}" for k, v in d["labels"].items())
    if d.get("sha256"):
        line += f"; sha256 {d['sha256'][:12]}"
    print(line, file=file)
    for note in d.get("notes") or []:
        print(f"  note: {note}", file=file)
