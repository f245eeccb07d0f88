"""ModelPicker: a bundled model, a Hugging Face id or a local folder, on its bundled data or the user's own;
what it is and what data it was scored on, once loaded."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench import Candidate, LoadedModel, RunStore, WorkbenchError, list_models, load_model
from workbench.data.source import DATA_OPTIONS
from workbench.tasks import task_of

from ._common import Message, Worker, fmt_mb, guarded, help_line
from .data import DataPicker, dataset_rows, rows_html

__all__ = ["ModelPicker", "OTHER", "model_key"]

#: the dropdown entry that reveals the free-text box
OTHER = "__other__"


def model_key(name: str, data: Mapping[str, Any] | None = None) -> tuple:
    """The cache key of a loaded model: its name and the data keywords it was loaded with (not the name alone)."""
    items = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (data or {}).items()))
    return (name, items)


class ModelPicker(w.VBox):
    """Pick a model and, optionally, your data; it loads on the worker thread and its task, size, baseline
    and the data it is scored on appear below.

    ``data`` / ``eval_data`` / ``task`` / ``data_options`` pre-fill the data field (``load_model``'s keywords of
    the same names; ``data_options`` holds the column options such as ``{"label_column": "stars"}``).
    ``store`` (a RunStore or a path) offers the data sets last scored there as suggestions.

    >>> picker = ModelPicker("digits-cnn")   # doctest: +SKIP
    >>> picker.load().result().name          # doctest: +SKIP
    'digits-cnn'
    """

    def __init__(
        self,
        model: str | LoadedModel = "digits-cnn",
        *,
        worker: Worker | None = None,
        n_eval: int | None = None,
        autoload: bool = True,
        data: str | os.PathLike | None = None,
        eval_data: str | os.PathLike | None = None,
        task: str | None = None,
        data_options: Mapping[str, Any] | None = None,
        store: RunStore | str | os.PathLike | None = None,
    ):
        self.worker = worker or Worker()
        self.n_eval = n_eval
        self.autoload = autoload
        self.store = store if store is None or isinstance(store, RunStore) else RunStore(store)
        self._models: dict[tuple, LoadedModel] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[LoadedModel], None]] = []
        self._baseline: Candidate | None = None
        #: the model loaded last (it stays usable when a later load fails)
        self.loaded: LoadedModel | None = None
        infos = {i.name: i for i in list_models()}
        self._infos = infos
        options = [(f"{i.name} ({i.task})", i.name) for i in infos.values()]
        preloaded: LoadedModel | None = None
        if isinstance(model, LoadedModel):  # a model built in Python (from_module) joins the list
            preloaded = model
            if model.name not in infos:
                options.insert(0, (f"{model.name} (from Python)", model.name))
            if data is None and eval_data is None and task is None and not data_options:
                data, eval_data, task, data_options = _spec_data(model.load_spec)
            model = model.name
        options.append(("other: Hugging Face id or local folder…", OTHER))
        known = {v for _, v in options}
        self.bundled = w.Dropdown(
            options=options,
            value=model if model in known else OTHER,
            description="Model",
            layout=w.Layout(width="360px"),
        )
        self.custom = w.Text(
            value="" if model in known else str(model),
            description="Id or path",
            placeholder="org/name or /path/to/folder or model.onnx",
            continuous_update=False,
            layout=w.Layout(width="420px"),
        )
        self.load_button = w.Button(description="Load", icon="download", tooltip="Load the model typed above")
        self.data_panel = DataPicker(
            None if data is None else str(data),
            eval_data=None if eval_data is None else str(eval_data),
            task=task,
            options=data_options,
            recent=self._recent(),
        )
        if preloaded is not None:
            self._models[model_key(preloaded.name, self.chosen_data() or {})] = preloaded
            self.loaded = preloaded
        self.info = w.HTML()
        self.error = Message()
        self._custom_row = w.HBox([self.custom, self.load_button])
        help_text = (
            "Pick a bundled model (they work offline), or choose 'other' and type a Hugging Face id "
            "(org/name), a folder written by save_pretrained(), or an .onnx file."
        )
        self.bundled.tooltip = help_text
        self.custom.tooltip = help_text
        super().__init__([self.bundled, self._custom_row, help_line(help_text), self.data_panel, self.info, self.error])
        self._sync_visibility()
        self.bundled.observe(self._on_pick, names="value")
        self.load_button.on_click(guarded(self.load, self.error, "Load"))
        self.data_panel.load_button.on_click(guarded(self.load, self.error, "Load"))
        for c in self.data_panel.controls:
            c.observe(self._on_data, names="value")
        if self.model is not None:
            self._show_loaded(self.model)
        else:
            self._show_registry_info()

    # ---- what is chosen ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The model identifier as chosen (stripped); empty when nothing is typed."""
        return (self.custom.value if self.bundled.value == OTHER else self.bundled.value).strip()

    def data_settings(self) -> dict[str, Any]:
        """The ``load_model`` data keywords chosen ({} = the bundled data). Raises WorkbenchError on bad input."""
        return self.data_panel.settings()

    def chosen_data(self) -> dict[str, Any] | None:
        """The data keywords chosen, or None while a box holds bad input (no error raised)."""
        try:
            return self.data_settings()
        except WorkbenchError:
            return None

    @property
    def key(self) -> tuple | None:
        """The cache key of the current choice (model and data), None while a data box holds bad input."""
        data = self.chosen_data()
        return None if data is None else model_key(self.name, data)

    @property
    def model(self) -> LoadedModel | None:
        """The loaded model for the current choice (model and data), or None if it is not loaded (yet)."""
        key = self.key
        return None if key is None else self._models.get(key)

    @property
    def task(self) -> str | None:
        """The chosen model's task ("classification", "causal-lm"...): from the loaded model, else the task
        chosen in the data options, else from the registry for a bundled one; None for an id or path not
        loaded yet."""
        m = self.model
        if m is not None:
            return m.task.name
        if self.data_panel.task_kind is not None:
            return self.data_panel.task_kind
        info = self._infos.get(self.name)
        return info.task if info is not None else None

    def on_loaded(self, fn: Callable[[LoadedModel], None]) -> None:
        self._listeners.append(fn)

    def check(self) -> str:
        """The chosen identifier, or raise WorkbenchError with a message the student can act on (a bad data
        option box included)."""
        name = self.name
        if not name:
            raise WorkbenchError(
                "No model given: pick a bundled model, or type a Hugging Face id (org/name), "
                "a local folder or an .onnx file into 'Id or path'."
            )
        is_path = name.startswith((".", "/", "~")) or Path(name).expanduser().exists()
        if not is_path and (any(ch.isspace() for ch in name) or name.count("/") > 1):
            raise WorkbenchError(
                f"{name!r} is not a model id: a Hugging Face id looks like 'org/name' (no spaces); "
                "a path starts with '/', './' or '~'. Bundled models: " + ", ".join(self._infos) + "."
            )
        self.data_settings()
        return name

    # ---- loading -----------------------------------------------------------------------------
    def load(self):
        """Load the chosen model on the chosen data on the worker thread; returns the Future (None on bad input)."""
        try:
            name = self.check()
            data = self.data_settings()
        except WorkbenchError as e:
            self.error.show(str(e), "error")
            return None
        if self.worker.busy:
            self.error.show(f"Busy ({self.worker.label}): the model loads when you press Run.", "warn")
            return None
        self.error.show(f"Loading {name}{_on(data)}…", "info")
        return self.worker.submit(f"loading {name}", self._load_job, name, data)

    def _load_job(self, name: str, data: dict[str, Any]) -> LoadedModel | None:
        try:
            return self.ensure_loaded(name, data)
        except WorkbenchError:
            return None  # already shown in the error line

    def ensure_loaded(self, name: str | None = None, data: Mapping[str, Any] | None = None) -> LoadedModel:
        """Load (once per model and data) and return the model; on the worker thread. ``data``: the
        ``load_model`` data keywords (None = those chosen now). Errors are shown, then raised; the model
        loaded before stays cached and usable."""
        name = name or self.check()
        data = dict(self.data_settings() if data is None else data)
        key = model_key(name, data)
        with self._lock:
            if key in self._models:
                return self._models[key]
        try:
            m = load_model(name, n_eval=self.n_eval, **data)
        except WorkbenchError as e:
            self.error.show(self._failed(name, data, str(e)), "error")
            raise
        except Exception as e:  # a broken checkpoint or file must not kill the panel
            msg = f"{type(e).__name__}: {e}"
            self.error.show(self._failed(name, data, msg), "error")
            raise WorkbenchError(f"Cannot load {name!r}{_on(data)}: {msg}") from e
        with self._lock:
            self._models[key] = m
            self.loaded = m
        if self.key == key:
            self.error.clear()
            self._show_loaded(m)
        self.refresh_recent()
        for fn in self._listeners:
            fn(m)
        return m

    def _failed(self, name: str, data: Mapping[str, Any], msg: str) -> str:
        text = f"Cannot load {name!r}{_on(data)}: {msg}"
        prev = self.loaded
        if prev is not None:
            spec = _spec_data(prev.load_spec)[0]
            on = f" on {spec}" if spec else ""
            text += f"\nThe model loaded before ({prev.name}{on}) is still loaded: pick it again to use it."
        return text

    def show_baseline(self, cand: Candidate | None) -> None:
        """Add the measured FP32 baseline to the info box."""
        self._baseline = cand
        if self.model is not None:
            self._show_loaded(self.model)

    def refresh_recent(self) -> None:
        """Offer the data sets last scored in the run store as suggestions in the data box."""
        if self.store is not None:
            self.data_panel.set_recent(self._recent())

    def _recent(self) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        try:
            return self.store.recent_datasets()
        except WorkbenchError:
            return []  # an unreadable store: no suggestions, the box still takes a path

    # ---- display -----------------------------------------------------------------------------
    def _on_pick(self, _change: Any = None) -> None:
        self._sync_visibility()
        self.error.clear()
        self._baseline = None
        if self.model is not None:
            self._show_loaded(self.model)
        else:
            self._show_registry_info()
            if self.autoload and self.bundled.value != OTHER:
                self.load()

    def _on_data(self, change: Any = None) -> None:
        """A data box changed: show the model loaded on it if there is one; the data path loads (autoload)."""
        self._baseline = None
        try:
            data = self.data_settings()
        except WorkbenchError as e:
            self.error.show(str(e), "error")
            return
        if self.model is not None:
            self.error.clear()
            self._show_loaded(self.model)
            return
        if not self.name:
            return
        if self.autoload and change is not None and change.get("owner") is self.data_panel.path:
            self.load()
        else:
            given = ", ".join(f"{k}={data[k]!r}" for k in DATA_OPTIONS if data.get(k) is not None)
            self.error.show(f"Press Load to load {self.name}{_on(data)}{f' with {given}' if given else ''}.", "info")

    def _sync_visibility(self) -> None:
        self._custom_row.layout.display = "flex" if self.bundled.value == OTHER else "none"

    def _show_registry_info(self) -> None:
        info = self._infos.get(self.name)
        if info is None:
            self.info.value = ""
            return
        size = f"{info.size_mb:g} MB" if info.size_mb else "–"
        params = f"{info.params:,}" if info.params else "–"
        self.info.value = rows_html(
            [
                ("task", info.task),
                ("parameters", params),
                ("size", size),
                ("source", info.source),
                ("", info.description),
            ]
        )

    def _show_loaded(self, m: LoadedModel) -> None:
        d = m.describe()
        rows = [
            ("task", d["task"]),
            ("parameters", f"{d['params']:,}" if d["params"] else "–"),
            ("size", fmt_mb(d["size_bytes"])),
            ("source", d["source"]),
            ("eval examples", str(d["n_eval"])),
        ]
        b = self._baseline
        if b is not None and b.ok:
            rows.append(("baseline", task_of(b).describe_baseline(b)))
        else:
            rows.append(("baseline", "not measured yet (press Run)"))
        rows += dataset_rows(m.info.get("dataset"), m.load_spec, m.info.get("eval_dataset"))
        self.info.value = f"<div class='wb-model-info'>{rows_html(rows)}</div>"


def _on(data: Mapping[str, Any]) -> str:
    """' on reviews.csv' (with its eval set), or '' for the bundled data."""
    if not data.get("data"):
        return ""
    held = f" (eval: {data['eval_data']})" if data.get("eval_data") else ""
    return f" on {data['data']}{held}"


def _spec_data(spec: Mapping[str, Any] | None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(data, eval_data, task, column options) of a ``LoadedModel.load_spec``."""
    spec = spec or {}
    options = {k: spec[k] for k in DATA_OPTIONS if spec.get(k) is not None}
    return spec.get("data"), spec.get("eval_data"), spec.get("task"), options
