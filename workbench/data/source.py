"""From what a user says ("my data is reviews.csv, the text is in 'body'") to a :class:`Dataset` a loader encodes.

One place turns ``load_model(..., data=, eval_data=, task=, text_column=, ...)``, the CLI's ``--data`` options,
the dashboard's data box and a notebook's ``parameters`` cell into read data sets, so all four accept the same
options with the same checks and the same messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DataError
from .dataset import Dataset
from .splits import TaskData

__all__ = ["DATA_OPTIONS", "TASK_KINDS", "DataRequest", "data_request", "kind_for_task"]

#: the keyword options that choose columns and reading behaviour (load_model, the CLI, panels, notebooks)
DATA_OPTIONS: tuple[str, ...] = (
    "text_column",
    "label_column",
    "image_column",
    "series_columns",
    "split_column",
    "group_column",
    "window",
    "on_bad_files",
    "encoding",
)

#: task kinds a user may name (``--task``), and the kind of data each reads
TASK_KINDS: dict[str, str | None] = {
    "text-classification": "text",
    "embedding-classification": "text",
    "image-classification": "image",
    "series-classification": "series",
    "causal-lm": "documents",
    "classification": None,
    "generic": None,
}


def kind_for_task(task: str | None) -> str | None:
    """The data kind a task reads (None: detect it from the file)."""
    if task is None:
        return None
    if task not in TASK_KINDS:
        raise ConfigError(
            f"The 'task' parameter must be one of {', '.join(map(repr, TASK_KINDS))} (or None: from the model). "
            f"Got {task!r} instead."
        )
    return TASK_KINDS[task]


@dataclass(frozen=True)
class DataRequest:
    """The user's data, read: the main data set (or a ready ``TaskData``), an optional held-out one, the options."""

    data: Dataset | TaskData | None
    eval_data: Dataset | None
    task: str | None
    options: dict[str, Any]

    def loader_kwargs(self) -> dict[str, Any]:
        """What a model loader receives: ``data=``, ``eval_data=``, ``task=`` (only those that are set)."""
        kw: dict[str, Any] = {}
        if self.data is not None:
            kw["data"] = self.data
        if self.eval_data is not None:
            kw["eval_data"] = self.eval_data
        if self.task is not None:
            kw["task"] = self.task
        return kw


def _sample_size(n_eval: int | None, held_out: bool) -> int | None:
    """Rows to read from a large file: ``n_eval`` for a held-out file; for one file also room for a training part."""
    if n_eval is None:
        return None
    return n_eval if held_out else max(4 * n_eval, 1000)


def data_request(
    data: Any = None,
    eval_data: Any = None,
    *,
    task: str | None = None,
    n_eval: int | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> DataRequest:
    """Read ``data`` / ``eval_data`` (paths, hub dataset ids, Datasets or a TaskData) with the column options."""
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(opts) - set(DATA_OPTIONS))
    if unknown:
        raise ConfigError(f"Unknown data options {unknown}. Valid options: {', '.join(DATA_OPTIONS)}.")
    kind = kind_for_task(task)
    if data is None and eval_data is not None:
        raise DataError("eval_data (--eval-data) was given without data (--data): give the training / main data too.")
    if data is None and opts:
        raise DataError(f"Data options {sorted(opts)} were given without data (--data PATH).")

    def read(x: Any, held_out: bool) -> Dataset | TaskData | None:
        if x is None or isinstance(x, (Dataset, TaskData)):
            return x
        from .readers import read_data

        if not isinstance(x, (str, os.PathLike)) or not str(x).strip():
            raise DataError(
                "The 'data' parameter must be a path (file or folder), a hub dataset id, a workbench Dataset or "
                f"TaskData, or None for the model's bundled data. Got {x!r} instead."
            )
        src = str(Path(str(x).strip()).expanduser()) if Path(str(x).strip()).expanduser().exists() else str(x).strip()
        try:
            return read_data(src, kind=kind, max_rows=_sample_size(n_eval, held_out), seed=seed, **opts)
        except DataError as e:
            if task is None or kind is None:
                raise
            raise DataError(f"{e} (task {task!r} reads {kind} data.)") from None

    main = read(data, held_out=False)
    held = read(eval_data, held_out=True)
    if held is not None and not isinstance(held, Dataset):
        raise DataError("eval_data must be a path or a Dataset (a TaskData already holds its own eval split).")
    if isinstance(main, TaskData) and held is not None:
        raise DataError("A TaskData already holds its eval split: pass eval_data only with a path or a Dataset.")
    return DataRequest(main, held, task, opts)
