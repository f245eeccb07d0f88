"""ModelPicker: a bundled model, a Hugging Face id or a local folder; what it is, once loaded."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench import Candidate, LoadedModel, WorkbenchError, list_models, load_model
from workbench.tasks import task_of

from ._common import Message, Worker, fmt_mb, help_line

__all__ = ["ModelPicker", "OTHER"]

#: the dropdown entry that reveals the free-text box
OTHER = "__other__"


class ModelPicker(w.VBox):
    """Pick a model; it loads on the worker thread and its task, size and baseline appear below.

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
    ):
        self.worker = worker or Worker()
        self.n_eval = n_eval
        self.autoload = autoload
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[LoadedModel], None]] = []
        self._baseline: Candidate | None = None
        infos = {i.name: i for i in list_models()}
        self._infos = infos
        options = [(f"{i.name} ({i.task})", i.name) for i in infos.values()]
        if isinstance(model, LoadedModel):  # a model built in Python (from_module) joins the list
            self._models[model.name] = model
            if model.name not in infos:
                options.insert(0, (f"{model.name} (from Python)", model.name))
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
        self.info = w.HTML()
        self.error = Message()
        self._custom_row = w.HBox([self.custom, self.load_button])
        help_text = (
            "Pick a bundled model (they work offline), or choose 'other' and type a Hugging Face id "
            "(org/name), a folder written by save_pretrained(), or an .onnx file."
        )
        self.bundled.tooltip = help_text
        self.custom.tooltip = help_text
        super().__init__([self.bundled, self._custom_row, help_line(help_text), self.info, self.error])
        self._sync_visibility()
        self.bundled.observe(self._on_pick, names="value")
        self.load_button.on_click(lambda _b: self.load())
        self._show_registry_info()

    # ---- what is chosen ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The model identifier as chosen (stripped); empty when nothing is typed."""
        return (self.custom.value if self.bundled.value == OTHER else self.bundled.value).strip()

    @property
    def model(self) -> LoadedModel | None:
        """The loaded model for the current choice, or None if it is not loaded (yet)."""
        return self._models.get(self.name)

    @property
    def task(self) -> str | None:
        """The chosen model's task ("classification", "causal-lm"...): from the loaded model, else from the
        registry for a bundled one; None for an id or path not loaded yet."""
        m = self.model
        if m is not None:
            return m.task.name
        info = self._infos.get(self.name)
        return info.task if info is not None else None

    def on_loaded(self, fn: Callable[[LoadedModel], None]) -> None:
        self._listeners.append(fn)

    def check(self) -> str:
        """The chosen identifier, or raise WorkbenchError with a message the student can act on."""
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
        return name

    # ---- loading -----------------------------------------------------------------------------
    def load(self):
        """Load the chosen model on the worker thread; returns the Future (None on bad input)."""
        try:
            name = self.check()
        except WorkbenchError as e:
            self.error.show(str(e), "error")
            return None
        if self.worker.busy:
            self.error.show(f"Busy ({self.worker.label}): the model loads when you press Run.", "warn")
            return None
        self.error.show(f"Loading {name}…", "info")
        return self.worker.submit(f"loading {name}", self._load_job, name)

    def _load_job(self, name: str) -> LoadedModel | None:
        try:
            return self.ensure_loaded(name)
        except WorkbenchError:
            return None  # already shown in the error line

    def ensure_loaded(self, name: str | None = None) -> LoadedModel:
        """Load (once) and return the model; on the worker thread. Errors are shown, then raised."""
        name = name or self.check()
        with self._lock:
            if name in self._models:
                return self._models[name]
        try:
            m = load_model(name, n_eval=self.n_eval)
        except WorkbenchError as e:
            self.error.show(f"Cannot load {name!r}: {e}", "error")
            raise
        except Exception as e:  # a broken checkpoint must not kill the panel
            self.error.show(f"Cannot load {name!r}: {type(e).__name__}: {e}", "error")
            raise WorkbenchError(f"Cannot load {name!r}: {type(e).__name__}: {e}") from e
        with self._lock:
            self._models[name] = m
        if self.name == name:
            self.error.clear()
            self._show_loaded(m)
        for fn in self._listeners:
            fn(m)
        return m

    def show_baseline(self, cand: Candidate | None) -> None:
        """Add the measured FP32 baseline to the info box."""
        self._baseline = cand
        if self.model is not None:
            self._show_loaded(self.model)

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

    def _sync_visibility(self) -> None:
        self._custom_row.layout.display = "flex" if self.bundled.value == OTHER else "none"

    def _show_registry_info(self) -> None:
        info = self._infos.get(self.name)
        if info is None:
            self.info.value = ""
            return
        size = f"{info.size_mb:g} MB" if info.size_mb else "–"
        params = f"{info.params:,}" if info.params else "–"
        self.info.value = _table(
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
        self.info.value = _table(rows)


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><td style='padding-right:12px;color:#555'>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table style='font-size:13px'>{body}</table>"
