"""Run store: every candidate in an embedded SQLite database (WAL mode).

- Each insert is one transaction: a process killed mid-run leaves every earlier candidate intact.
- WAL + a busy timeout let two processes (a notebook and a CLI run) write at once.
- Rows are only ever inserted, never updated: a rerun is a new candidate.
- A re-timing (``workbench remeasure``) is a row of its own in ``retimings``; a candidate read from the store
  shows its newest timing (and keeps the first one under ``metrics["first_timing"]``), its record untouched.

>>> store = RunStore(":memory:")
>>> len(store.candidates())
0
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.errors import StoreError
from .candidate import RECORD_COLUMNS, Candidate

__all__ = ["RunStore", "default_store_path", "TIMING_METRICS", "baseline_timing"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    model TEXT NOT NULL,
    recipe_name TEXT NOT NULL,
    recipe TEXT NOT NULL,
    runtime TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT NOT NULL,
    env TEXT NOT NULL,
    artifact_path TEXT,
    artifact_sha256 TEXT,
    parent_id TEXT,
    error TEXT,
    threads INTEGER,
    seed INTEGER,
    created_at REAL NOT NULL,
    notes TEXT NOT NULL DEFAULT '{}',
    task TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS candidates_key ON candidates(key, status);
CREATE INDEX IF NOT EXISTS candidates_model ON candidates(model, created_at);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS retimings (
    candidate_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retimings_candidate ON retimings(candidate_id, created_at);
"""
#: the metrics a re-timing replaces (everything else - accuracy, size, the artifact - stays as first measured)
TIMING_METRICS = (
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "cv",
    "samples_ms",
    "n_samples",
    "threads",
    "speedup",
    "speedup_rounds",
    "speedup_ci",
    "compared_with",
    "noisy",
    "noise",
    "noise_facts",
    "timing_attempts",
    "waited_for_quiet_s",
    "thread_settings",
    "p50_usual_ms",
    "usual_speed",
)
_SCHEMA_VERSION = "1"
_JSON_COLS = ("recipe", "metrics", "env", "notes")


def baseline_timing(metrics: Mapping[str, Any], *, own: bool) -> dict[str, Any]:
    """What one timing's ``metrics`` say of its baseline's speed, as :meth:`RunStore.baseline_timings` lists it
    (less ``measured_at``): ``own``, the baseline's own timing (its p50 and samples); else the baseline's p50 and
    per-round p50s timed beside the candidate (``compared_with``). ``noisy``: that timing was flagged."""
    if own:
        timed = {"p50_ms": metrics.get("p50_ms"), "samples_ms": metrics.get("samples_ms")}
    else:
        beside = metrics.get("compared_with") or {}
        timed = {"p50_ms": beside.get("p50_ms"), "round_p50_ms": beside.get("round_p50_ms")}
    return {**timed, "noisy": bool(metrics.get("noisy"))}


def default_store_path() -> Path:
    """``$WORKBENCH_STORE`` or ``./.workbench/runs.sqlite`` in the working directory."""
    return Path(os.environ.get("WORKBENCH_STORE", Path.cwd() / ".workbench" / "runs.sqlite"))


class RunStore:
    """Append-only candidate store. Thread-safe; one connection per thread."""

    def __init__(self, path: str | os.PathLike[str] | None = None, timeout_s: float = 30.0):
        if path is not None and (not isinstance(path, (str, os.PathLike)) or not str(path).strip()):
            raise StoreError(
                f"The run store path must be a non-empty path (str or os.PathLike), ':memory:', or None for "
                f"$WORKBENCH_STORE / ./.workbench/runs.sqlite. Got {path!r} instead."
            )
        self.path = ":memory:" if path == ":memory:" else Path(path or default_store_path()).expanduser()
        self._timeout = timeout_s
        self._local = threading.local()
        self._memory_conn: sqlite3.Connection | None = None
        if self.path != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"Cannot create the run store folder {self.path.parent}: {e.strerror}. "
                    "Set WORKBENCH_STORE or pass store= to a writable path."
                ) from None
            if not os.access(self.path.parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
                raise StoreError(
                    f"The run store {self.path} is not writable. Set WORKBENCH_STORE or pass store= to a writable path."
                )
        try:
            with self._conn() as c:
                c.executescript(_SCHEMA)
                cols = {r[1] for r in c.execute("PRAGMA table_info(candidates)")}
                if "task" not in cols:  # a store written before candidates recorded their task
                    c.execute("ALTER TABLE candidates ADD COLUMN task TEXT NOT NULL DEFAULT ''")
                c.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (_SCHEMA_VERSION,))
                if self.path != ":memory:":
                    verdict = c.execute("PRAGMA quick_check(1)").fetchone()[0]
                    if verdict != "ok":
                        raise sqlite3.DatabaseError(f"integrity check: {verdict}")
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"The run store {self.path} cannot be used: {e}. It is damaged or not a run store; it was not "
                f"changed. Move it aside (mv {self.path} {self.path}.damaged) to start a new store, and keep the "
                "damaged file to recover records from it (sqlite3 .recover)."
            ) from None
        self.clean_stale_work()

    def clean_stale_work(self) -> list[Path]:
        """Remove the work folders (``artifacts/.tmp-<id>-<pid>``) that runs killed mid-pass left behind."""
        if self.path == ":memory:" or not self.artifacts_dir.is_dir():
            return []
        removed = []
        for d in self.artifacts_dir.glob(".tmp-*-*"):
            pid = d.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            import shutil

            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        return removed

    @property
    def artifacts_dir(self) -> Path:
        """Folder for candidate artifacts, beside the database."""
        if self.path == ":memory:":  # an in-memory store keeps its artifacts in a private temp folder
            if not hasattr(self, "_tmp_artifacts"):
                import tempfile

                self._tmp_artifacts = Path(tempfile.mkdtemp(prefix="workbench-artifacts-"))
            return self._tmp_artifacts
        return self.path.parent / "artifacts"

    def _conn(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = sqlite3.connect(":memory:", check_same_thread=False)
            return self._memory_conn
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(str(self.path), timeout=self._timeout, isolation_level=None)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            c.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            self._local.conn = c
        return c

    # ---- writing -------------------------------------------------------------------------
    def _transaction(self, work) -> None:
        """Run ``work(connection)`` in one write transaction; a failure names its real cause (a full disk, a
        damaged file) instead of the follow-up "cannot rollback" that SQLite gives once it rolled back itself."""
        c = self._conn()
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                work(c)
                c.execute("COMMIT")
            except BaseException:
                try:
                    c.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite already rolled back (SQLITE_FULL, SQLITE_IOERR): keep the first error
                raise
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as e:
            raise StoreError(_write_error(self.path, e)) from None

    def add(self, cand: Candidate) -> Candidate:
        row = cand.to_dict()
        for k in _JSON_COLS:
            row[k] = json.dumps(row[k], sort_keys=True, default=str)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            self._transaction(
                lambda c: c.execute(f"INSERT INTO candidates ({cols}) VALUES ({marks})", tuple(row.values()))
            )
        except sqlite3.IntegrityError as e:
            raise StoreError(
                f"Candidate {cand.id} is already in the store: records are never overwritten ({e})."
            ) from None
        return cand

    def add_retiming(self, cand_id: str, metrics: dict[str, Any]) -> Candidate:
        """Record a new timing of a stored candidate (only :data:`TIMING_METRICS`); returns the candidate as it now
        reads. The candidate's own row is not touched."""
        self.get(cand_id)  # refuses an unknown id
        timing = {k: metrics[k] for k in TIMING_METRICS if k in metrics}
        if not timing.get("p50_ms"):
            raise StoreError(f"A re-timing of {cand_id} needs a p50_ms; got fields {sorted(metrics)}.")
        text = json.dumps(timing, sort_keys=True, default=str)
        self._transaction(lambda c: c.execute("INSERT INTO retimings VALUES (?, ?, ?)", (cand_id, time.time(), text)))
        return self.get(cand_id)

    def retimings(self, cand_id: str) -> list[dict[str, Any]]:
        """Every re-timing of a candidate, oldest first (each with its ``measured_at`` time)."""
        rows = self._conn().execute(
            "SELECT created_at, metrics FROM retimings WHERE candidate_id = ? ORDER BY created_at, rowid", (cand_id,)
        )
        return [{**json.loads(m), "measured_at": t} for t, m in rows.fetchall()]

    def baseline_timings(self, base_id: str) -> list[dict[str, Any]]:
        """The baseline ``base_id``'s p50 in every timing recorded so far, oldest first: its own timings (the first
        and its re-timings) and the rounds it ran beside each candidate compared with it (``compared_with``), first
        timings and re-timings. Each: ``measured_at``, ``p50_ms``, ``noisy`` (that timing was flagged)."""
        try:
            c = self._conn()
            rows = c.execute("SELECT id, created_at, metrics FROM candidates").fetchall()
            rows += c.execute("SELECT candidate_id, created_at, metrics FROM retimings").fetchall()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"Cannot read the run store {self.path}: {e}") from None
        out = []
        for cid, t, text in rows:
            m = json.loads(text)
            beside = m.get("compared_with") or {}
            if cid == base_id and m.get("p50_ms"):
                out.append({"measured_at": t, **baseline_timing(m, own=True)})
            elif beside.get("id") == base_id and beside.get("p50_ms"):
                out.append({"measured_at": t, **baseline_timing(m, own=False)})
        return sorted(out, key=lambda r: r["measured_at"])

    def _overlay(self, cands: list[Candidate]) -> list[Candidate]:
        """Each candidate with its newest re-timing in place of its first timing."""
        try:
            rows = self._conn().execute(
                "SELECT candidate_id, created_at, metrics FROM retimings ORDER BY created_at, rowid"
            )
            latest: dict[str, tuple[float, str, int]] = {}
            for cid, t, m in rows.fetchall():
                n = latest.get(cid, (0, "", 0))[2] + 1
                latest[cid] = (t, m, n)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"Cannot read the run store {self.path}: {e}") from None
        if not latest:
            return cands
        out = []
        for c in cands:
            if c.id not in latest:
                out.append(c)
                continue
            t, text, n = latest[c.id]
            first = {k: c.metrics.get(k) for k in TIMING_METRICS if k in c.metrics and k != "samples_ms"}
            metrics = {**c.metrics, **json.loads(text), "first_timing": first, "retimed": n, "retimed_at": t}
            out.append(replace(c, metrics=metrics))
        return out

    #: how many data sets ``recent_datasets`` keeps
    RECENT_DATASETS = 10

    def remember_dataset(self, info: dict[str, Any]) -> None:
        """Keep a data set a model was scored on (its ``describe_dataset`` summary) at the top of the recent list."""
        if not info or not info.get("source") or not info.get("sha256"):
            return  # bundled or synthetic data: nothing a user would pick again
        entry = {k: info.get(k) for k in ("source", "format", "kind", "rows", "columns", "labels", "sha256")}
        entry["used_at"] = time.time()

        def work(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT v FROM meta WHERE k = 'recent_datasets'").fetchone()
            recent = _json_list(row[0] if row else "[]")
            recent = [entry] + [r for r in recent if r.get("source") != entry["source"]]
            c.execute(
                "INSERT OR REPLACE INTO meta VALUES ('recent_datasets', ?)",
                (json.dumps(recent[: self.RECENT_DATASETS], default=str),),
            )

        self._transaction(work)

    def recent_datasets(self) -> list[dict[str, Any]]:
        """The data sets models were last scored on, newest first (source, format, kind, rows, labels, sha256)."""
        try:
            row = self._conn().execute("SELECT v FROM meta WHERE k = 'recent_datasets'").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"Cannot read the run store {self.path}: {e}") from None
        return _json_list(row[0] if row else "[]")

    # ---- reading -------------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple = ()) -> list[Candidate]:
        c = self._conn()
        c.row_factory = sqlite3.Row
        try:
            rows = c.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"Cannot read the run store {self.path}: {e}") from None
        out = []
        for r in rows:
            d = dict(r)
            for k in _JSON_COLS:
                d[k] = json.loads(d[k])
            out.append(Candidate.from_dict(d))
        return self._overlay(out)

    def get(self, cand_id: str) -> Candidate:
        rows = self._rows("SELECT * FROM candidates WHERE id = ?", (cand_id,))
        if not rows:
            raise StoreError(f"No candidate with id {cand_id!r} in {self.path}.")
        return rows[0]

    def candidates(
        self, model: str | None = None, status: str | None = None, include_intermediate: bool = True
    ) -> list[Candidate]:
        sql, args = "SELECT * FROM candidates WHERE 1=1", []
        if model:
            sql += " AND model = ?"
            args.append(model)
        if status:
            sql += " AND status = ?"
            args.append(status)
        if not include_intermediate:
            sql += " AND status != 'intermediate'"
        return self._rows(sql + " ORDER BY created_at, rowid", tuple(args))

    def find(self, key: str, statuses: tuple[str, ...] = ("ok", "degraded")) -> Candidate | None:
        """The newest candidate with this key and one of these statuses (for reuse instead of rerun)."""
        marks = ",".join("?" for _ in statuses)
        rows = self._rows(
            f"SELECT * FROM candidates WHERE key = ? AND status IN ({marks}) "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (key, *statuses),
        )
        return rows[0] if rows else None

    def lineage(self, cand_id: str) -> list[Candidate]:
        """The candidate and its ancestors, root first."""
        chain, seen = [], set()
        cur: str | None = cand_id
        while cur and cur not in seen:
            seen.add(cur)
            c = self.get(cur)
            chain.append(c)
            cur = c.parent_id
        return chain[::-1]

    def to_frame(self, model: str | None = None, include_intermediate: bool = False):
        """Candidates as a pandas DataFrame, one row each, metrics flattened into columns."""
        import pandas as pd

        recs = [c.to_record() for c in self.candidates(model, include_intermediate=include_intermediate)]
        return pd.DataFrame.from_records(recs, columns=list(RECORD_COLUMNS))

    def integrity_ok(self) -> bool:
        return self._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def stats(self) -> dict[str, Any]:
        rows = self._conn().execute("SELECT status, COUNT(*) FROM candidates GROUP BY status").fetchall()
        return {s: n for s, n in rows}


def _json_list(text: str) -> list[dict[str, Any]]:
    """A JSON list of dicts, or [] for anything else (a damaged meta value never breaks the store)."""
    try:
        v = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [r for r in v if isinstance(r, dict)] if isinstance(v, list) else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_error(path: Any, e: sqlite3.DatabaseError) -> str:
    text = str(e)
    if "full" in text or "no space" in text.lower():
        return (
            f"No space left for the run store {path} ({text}): nothing was written, and every record already in "
            "the store is intact. Free some disk space (or point WORKBENCH_STORE elsewhere) and run again."
        )
    if "readonly" in text or "read-only" in text:
        return f"The run store {path} is read-only ({text}). Set WORKBENCH_STORE or pass store= to a writable path."
    if "locked" in text or "busy" in text:
        return f"The run store {path} stayed locked by another process ({text}); run again when it is done."
    return f"Cannot write to the run store {path}: {text}"
