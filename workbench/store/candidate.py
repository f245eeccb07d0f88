"""The Candidate record: one measured (or failed) variant of a model. Never mutated."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Candidate", "STATUSES", "RECORD_COLUMNS"]

#: ok: measured; degraded: measured but quality collapsed (flagged); failed: an error, see ``error``;
#: cancelled: stopped by the user; intermediate: a recipe step before the last (lineage only)
STATUSES = ("ok", "degraded", "failed", "cancelled", "intermediate")


@dataclass(frozen=True)
class Candidate:
    id: str
    key: str  # hash of (model fingerprint, recipe steps, eval spec, threads): equal key = same candidate
    model: str
    recipe_name: str
    recipe: dict  # the recipe JSON (all steps up to this one)
    runtime: str  # "torch" | "onnxruntime" | "executorch" | "litert"
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    artifact_path: str | None = None
    artifact_sha256: str | None = None
    parent_id: str | None = None
    error: str | None = None
    threads: int | None = None
    seed: int = 0
    created_at: float = field(default_factory=time.time)
    notes: dict[str, Any] = field(default_factory=dict)  # facts from passes (fused ops, excluded nodes...)
    #: the task kind that measured it (workbench.tasks.TASKS); "" in records from before it was stored
    task: str = ""

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:12]

    def derive(self, **changes: Any) -> Candidate:
        """A new record (new id) based on this one: reruns never overwrite."""
        return replace(self, id=Candidate.new_id(), created_at=time.time(), **changes)

    # convenient flat fields for tables and JSON
    @property
    def ok(self) -> bool:
        return self.status in ("ok", "degraded")

    def get(self, metric: str, default: Any = None) -> Any:
        return self.metrics.get(metric, default)

    def to_record(self) -> dict[str, Any]:
        """The flat JSON record the CLI prints (``--json``)."""
        m = self.metrics
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "model": self.model,
            "task": self.task,
            "recipe": self.recipe_name,
            "steps": self.recipe.get("steps", []),
            "runtime": self.runtime,
            "status": self.status,
            "artifact": self.artifact_path,
            "artifact_sha256": self.artifact_sha256,
            "p50_ms": m.get("p50_ms"),
            "p90_ms": m.get("p90_ms"),
            "p99_ms": m.get("p99_ms"),
            "mean_ms": m.get("mean_ms"),
            "cv": m.get("cv"),
            "peak_mem_bytes": m.get("peak_mem_bytes"),
            "size_bytes": m.get("size_bytes"),
            "params": m.get("params"),
            "accuracy": m.get("accuracy"),
            "accuracy_ci": m.get("accuracy_ci"),
            "accuracy_drop": m.get("accuracy_drop"),
            "fidelity": m.get("fidelity"),
            "cosine": m.get("cosine"),
            "agreement": m.get("agreement"),
            "speedup": m.get("speedup"),
            # how far a latency can be trusted: the interval, the noise flag and its reason, what it was timed beside
            "speedup_ci": m.get("speedup_ci"),
            "p50_usual_ms": m.get("p50_usual_ms"),
            "noisy": m.get("noisy"),
            "noise": m.get("noise"),
            "compared_with": m.get("compared_with"),
            "thread_settings": m.get("thread_settings"),
            "retimed": m.get("retimed"),
            # causal LMs (None for other tasks)
            "perplexity": m.get("perplexity"),
            "perplexity_ci": m.get("perplexity_ci"),
            "tokens_per_s": m.get("tokens_per_s"),
            "prefill_ms": m.get("prefill_ms"),
            "threads": self.threads,
            "error": self.error,
            "created_at": self.created_at,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


RECORD_COLUMNS = tuple(
    Candidate(id="", key="", model="", recipe_name="", recipe={}, runtime="", status="ok").to_record()
)
