"""DataPicker: the user's own data for the picked model (a file, a folder or a hub dataset id), and what was read.

The panel only gathers what the user typed into ``load_model`` keywords (``settings()``); reading, detecting
columns and every check happen in ``workbench.load_model``, whose errors the model picker shows.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as w

from workbench.core.errors import ConfigError
from workbench.data.source import DATA_OPTIONS, TASK_KINDS

from ._common import LABEL_STYLE, help_line

__all__ = ["DataPicker", "AUTO_TASK", "dataset_rows", "DATA_PLACEHOLDER"]

#: the task dropdown's "from the model" entry
AUTO_TASK = "auto"
DATA_PLACEHOLDER = "your data: file, folder or hub dataset id (empty: the model's bundled data)"

#: the option boxes shown: option name -> (label, placeholder)
_BOXES: dict[str, tuple[str, str]] = {
    "text_column": ("Text column", "detected (e.g. text, review)"),
    "label_column": ("Label column", "detected (e.g. label, class)"),
    "image_column": ("Image column", "detected (paths or images)"),
    "series_columns": ("Series columns", "detected (c1,c2,... one per channel)"),
    "split_column": ("Split column", "none (train / eval per row)"),
    "group_column": ("Group column", "series: rows with one id form a window"),
    "window": ("Window (rows)", "series: rows per window"),
    "encoding": ("Encoding", "utf-8"),
}
_BAD_FILES = (("stop at an unreadable file", ""), ("skip unreadable files", "skip"))
#: a role in ``describe_dataset(...)["columns"]`` -> the option that names it
_ROLE_OPTION = {"text": "text_column", "label": "label_column", "image": "image_column", "split": "split_column"}


class DataPicker(w.VBox):
    """A data box (recent data sets as suggestions), an optional eval-data box, the task kind, column options.

    Empty data means the model's bundled data. ``settings()`` is what ``load_model`` receives.

    >>> d = DataPicker("reviews.csv", options={"label_column": "stars"})
    >>> d.settings()
    {'data': 'reviews.csv', 'label_column': 'stars'}
    """

    def __init__(
        self,
        data: str | None = None,
        *,
        eval_data: str | None = None,
        task: str | None = None,
        options: Mapping[str, Any] | None = None,
        recent: list[dict[str, Any]] | None = None,
    ):
        options = dict(options or {})
        unknown = sorted(set(options) - set(DATA_OPTIONS))
        if unknown:
            raise ConfigError(f"Unknown data options {unknown}. Valid options: {', '.join(DATA_OPTIONS)}.")
        if task is not None and task not in TASK_KINDS:
            raise ConfigError(
                f"The 'task' parameter must be one of {', '.join(map(repr, TASK_KINDS))} (or None: from the model). "
                f"Got {task!r} instead."
            )
        self.path = w.Combobox(
            value="" if data is None else str(data),
            options=[],
            description="Data",
            placeholder=DATA_PLACEHOLDER,
            ensure_option=False,
            continuous_update=False,
            layout=w.Layout(width="440px"),
        )
        self.eval_path = w.Text(
            value="" if eval_data is None else str(eval_data),
            description="Eval data",
            placeholder="optional held-out set (empty: a stratified split of your data)",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=w.Layout(width="95%"),
        )
        self.task = w.Dropdown(
            options=[("auto (from what is picked)", AUTO_TASK)] + [(k, k) for k in TASK_KINDS],
            value=task or AUTO_TASK,
            description="Task",
            style=LABEL_STYLE,
            layout=w.Layout(width="95%"),
        )
        self.load_button = w.Button(
            description="Load", icon="download", tooltip="Load the model on this data (or on its bundled data)"
        )
        self.boxes: dict[str, w.Text] = {}
        for name, (label, placeholder) in _BOXES.items():
            v = options.get(name)
            if isinstance(v, (list, tuple)):
                v = ",".join(map(str, v))
            self.boxes[name] = w.Text(
                value="" if v is None else str(v),
                description=label,
                placeholder=placeholder,
                continuous_update=False,
                style=LABEL_STYLE,
                layout=w.Layout(width="95%"),
            )
        self.on_bad_files = w.Dropdown(
            options=_BAD_FILES,
            value=options.get("on_bad_files") or "",
            description="Bad files",
            style=LABEL_STYLE,
            layout=w.Layout(width="95%"),
        )
        help_text = (
            "Score the model on your data: CSV/TSV, JSON Lines, Parquet, a datasets folder or hub dataset id, an "
            "image folder (one subfolder per class), .npz, text/Markdown files. Columns are detected when the "
            "boxes below are empty; what was used shows once loaded."
        )
        self.path.tooltip = help_text
        self.options_box = w.Accordion(
            children=[w.VBox([self.eval_path, self.task, *self.boxes.values(), self.on_bad_files])]
        )
        self.options_box.set_title(0, "Data options: eval set, task, columns")
        self.options_box.selected_index = 0 if (eval_data or task or options) else None  # collapsed unless set
        self.set_recent(recent or [])
        super().__init__([w.HBox([self.path, self.load_button]), help_line(help_text), self.options_box])

    # ---- what is chosen ----------------------------------------------------------------------
    @property
    def controls(self) -> list[w.Widget]:
        """Every widget whose value is part of ``settings()`` (the dashboard observes them)."""
        return [self.path, self.eval_path, self.task, *self.boxes.values(), self.on_bad_files]

    @property
    def data(self) -> str | None:
        """The data as typed (stripped), None when empty (the bundled data)."""
        return self.path.value.strip() or None

    def options(self) -> dict[str, Any]:
        """The column options that are set (``window`` as an int). Raises ConfigError on a bad window."""
        out: dict[str, Any] = {k: b.value.strip() for k, b in self.boxes.items() if b.value.strip()}
        if "window" in out:
            try:
                out["window"] = int(out["window"])
            except ValueError:
                raise ConfigError(
                    f"The 'Window (rows)' box must be a whole number of rows like 100. Got {out['window']!r} instead."
                ) from None
            if out["window"] < 1:
                raise ConfigError(f"The 'Window (rows)' box must be a number >= 1. Got {out['window']} instead.")
        if self.on_bad_files.value:
            out["on_bad_files"] = self.on_bad_files.value
        return out

    def settings(self) -> dict[str, Any]:
        """The ``load_model`` keywords for this data: only those that are set ({} = the bundled data)."""
        kw: dict[str, Any] = {}
        if self.data:
            kw["data"] = self.data
        if self.eval_path.value.strip():
            kw["eval_data"] = self.eval_path.value.strip()
        if self.task.value != AUTO_TASK:
            kw["task"] = self.task.value
        kw.update(self.options())
        return kw

    @property
    def task_kind(self) -> str | None:
        """The task kind chosen in the dropdown (None: from the model)."""
        return None if self.task.value == AUTO_TASK else self.task.value

    def set_recent(self, datasets: list[dict[str, Any]]) -> None:
        """Offer these data sets (``RunStore.recent_datasets()``, newest first) as suggestions in the data box."""
        sources: list[str] = []
        for d in datasets:
            s = d.get("source")
            if isinstance(s, str) and s and s not in sources:
                sources.append(s)
        self.recent = [d for d in datasets if isinstance(d.get("source"), str)]
        self.path.options = sources


def dataset_rows(
    d: Mapping[str, Any] | None,
    given: Mapping[str, Any] | None = None,
    held_out: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """(label, text) rows for the info table: what ``describe_dataset`` said of the data a model was loaded on.

    ``given`` are the options the user set (``model.load_spec``): a column that was not named is "detected".
    ``held_out`` is the summary of the user's eval set, if one was given.
    """
    if not d:
        return []
    given = given or {}
    rows: list[tuple[str, str]] = [("data", str(d.get("source", "–")))]
    fmt = " / ".join(str(x) for x in (d.get("format"), d.get("kind")) if x)
    if fmt:
        rows.append(("format", fmt))
    n, total = d.get("rows"), d.get("rows_in_source")
    if n is not None:
        rows.append(("rows", f"{n:,} of {total:,} in the source" if total and total != n else f"{n:,}"))
    cols = d.get("columns") or {}
    if cols:
        parts = []
        for role, col in cols.items():
            opt = _ROLE_OPTION.get(role, f"{role}_column")
            how = "given" if given.get(opt) or (role == "series" and given.get("series_columns")) else "detected"
            parts.append(f"{role} = {col!r} ({how})")
        rows.append(("columns", ", ".join(parts)))
    if d.get("channels"):
        rows.append(("channels", ", ".join(map(str, d["channels"]))))
    if d.get("shape"):
        rows.append(("shape", " x ".join(map(str, d["shape"]))))
    if d.get("arrays"):
        rows.append(("arrays", "; ".join(f"{k} {tuple(s)} {t}" for k, (s, t) in d["arrays"].items())))
    labels = d.get("labels") or {}
    if labels:
        shown = list(labels.items())[:12]
        more = f", … ({len(labels) - 12} more)" if len(labels) > 12 else ""
        rows.append((f"labels ({len(labels)})", ", ".join(f"{k}: {v}" for k, v in shown) + more))
    if held_out:
        sha = f", sha256 {str(held_out['sha256'])[:12]}" if held_out.get("sha256") else ""
        rows.append(("eval data", f"{held_out.get('source')} ({held_out.get('rows', '?')} rows{sha})"))
    elif given.get("eval_data"):
        rows.append(("eval data", str(given["eval_data"])))
    if d.get("sha256"):
        rows.append(("sha256", str(d["sha256"])[:12]))
    for note in d.get("notes") or []:
        rows.append(("note", str(note)))
    for i, p in enumerate(d.get("preview") or []):
        rows.append(("preview" if i == 0 else "", str(p)[:120]))
    return rows


def rows_html(rows: list[tuple[str, Any]]) -> str:
    """A small two-column table (escaped)."""
    cell = "padding:1px 12px 1px 0;line-height:1.35;vertical-align:top;text-align:left"
    body = "".join(
        f"<tr><td style='{cell};color:#555'>{html.escape(k)}</td><td style='{cell}'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table style='font-size:13px'>{body}</table>"
