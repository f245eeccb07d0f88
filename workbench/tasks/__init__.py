"""Task kinds: one table, one lookup, and the comparisons every part of the workbench shares.

``TASKS`` maps a task name to the class that implements it (imported only when needed, so a stored
causal-LM candidate can be judged without importing the LM stack until it is asked for). A new task is
one module with a :class:`Task` subclass and one entry here.

>>> from workbench.tasks import get_task
>>> get_task("classification").speed_metric
'p50_ms'
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.errors import UnknownNameError
from .base import METRICS, Metric, Task, fmt, fmt_mb, fmt_ms, fmt_pct, higher_is_better, metric_title
from .classification import (
    Classification,
    EmbeddingClassification,
    Generic,
    ImageClassification,
    LinearHead,
    SeriesClassification,
    TextClassification,
)

__all__ = [
    "TASKS",
    "Task",
    "Metric",
    "METRICS",
    "Classification",
    "TextClassification",
    "ImageClassification",
    "SeriesClassification",
    "EmbeddingClassification",
    "Generic",
    "LinearHead",
    "get_task",
    "task_of",
    "tasks_of",
    "quality",
    "dominates",
    "pareto_front",
    "metric_value",
    "higher_is_better",
    "metric_title",
    "fmt",
    "fmt_ms",
    "fmt_mb",
    "fmt_pct",
]

#: task name -> "module:Class"; the only place a task kind is registered
TASKS: dict[str, str] = {
    "classification": "workbench.tasks.classification:Classification",
    "text-classification": "workbench.tasks.classification:TextClassification",
    "image-classification": "workbench.tasks.classification:ImageClassification",
    "series-classification": "workbench.tasks.classification:SeriesClassification",
    "embedding-classification": "workbench.tasks.classification:EmbeddingClassification",
    "generic": "workbench.tasks.classification:Generic",
    "causal-lm": "workbench.lm.task:CausalLM",
}


def get_task(name: str) -> type[Task]:
    """The task class registered under ``name``."""
    if name not in TASKS:
        raise UnknownNameError("task", name, list(TASKS))
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _legacy_kind(metrics: Mapping[str, Any]) -> str:
    """Records written before candidates stored their task: read it from what was measured."""
    if metrics.get("perplexity") is not None or metrics.get("tokens_per_s") is not None:
        return "causal-lm"
    if metrics.get("accuracy") is not None or metrics.get("agreement") is not None:
        return "classification"
    return "generic"


def task_of(c) -> type[Task]:
    """The task class of a candidate (``Candidate.task``; records from before it was stored: inferred)."""
    return get_task(getattr(c, "task", "") or _legacy_kind(c.metrics))


def tasks_of(cands: Sequence[Any]) -> type[Task]:
    """The one task of a set of candidates (the first's; candidates of one model share it)."""
    return task_of(cands[0]) if cands else Classification


def quality(c, key: str | None = None) -> float | None:
    """A candidate's quality, higher is better (its task's first quality metric it has, or ``key``)."""
    return task_of(c).quality(c.metrics, key)


def dominates(a, b, axes: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` on every axis (each in its own direction) and better on one."""
    better = False
    for key in axes:
        va, vb = metric_value(a, key), metric_value(b, key)
        if va is None or vb is None:
            return False
        if not higher_is_better(key):
            va, vb = -va, -vb
        if va < vb:
            return False
        better = better or va > vb
    return better


def metric_value(c, key: str) -> float | None:
    """A candidate's metric as a float (``size_mb`` from ``size_bytes``), None where it has none."""
    if key == "size_mb":
        v = c.get("size_bytes")
        return None if v is None else v / 1e6
    v = c.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def pareto_front(cands: Sequence[Any], axes: Sequence[str] | None = None) -> list[Any]:
    """Measured candidates that no other one dominates. ``axes`` default: the task's quality, its speed
    metric and size (the search's three objectives); charts pass their own two axes."""
    pts = [c for c in cands if c.ok and c.status != "intermediate"]
    if axes is None:
        task = tasks_of(pts)
        axes = (task.quality_metric([c.metrics for c in pts]), task.speed_metric, "size_mb")
    pts = [c for c in pts if all(metric_value(c, k) is not None for k in axes)]
    return [c for c in pts if not any(dominates(o, c, axes) for o in pts if o is not c)]
