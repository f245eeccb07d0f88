"""How long each workshop notebook takes with its default parameters (the README's table for teachers).

Runs every notebook in notebooks/ with papermill, one after the other, each in its own empty folder (so a
fresh run store: nothing reused from an earlier run) and with the shared model cache (the MiniLM head and
the digits CNN are trained once per machine, as on a student's laptop after `make install`). Records the
wall-clock time and the CPU time the kernel used, then runs a measuring notebook again in the same folder to
show what a rerun costs when every candidate comes from the run store (quantization.ipynb).

    .venv/bin/python bench/bench_notebooks.py      # prints a table, writes bench/results/notebooks.json
    .venv/bin/python bench/bench_notebooks.py -p model digits-cnn   # the short-session variant
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("WORKBENCH_CACHE", str(ROOT / ".workbench" / "cache"))

ORDER = ["quickstart", "quantization", "export_and_deploy", "pruning", "distillation"]


def run_notebook(name: str, cwd: Path, params: list[tuple[str, str]], timeout: int) -> dict:
    """papermill in a child process; CPU time = the children's (papermill + kernel) user + system time."""
    src = ROOT / "notebooks" / f"{name}.ipynb"
    out = cwd / f"{name}.out.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(src), str(out), "--cwd", str(cwd), "-k", "python3"]
    for k, v in params:
        cmd += ["-p", k, v]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    row = {"notebook": f"{name}.ipynb", "ok": r.returncode == 0, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
    if r.returncode != 0:
        row["error"] = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="papermill -p")
    ap.add_argument("--only", nargs="*", default=ORDER, choices=ORDER)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--out", default=str(HERE / "results" / "notebooks.json"))
    args = ap.parse_args()

    from workbench.core.env import fingerprint

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as d:
        for name in args.only:
            cwd = Path(d) / name
            cwd.mkdir()
            rows.append(run_notebook(name, cwd, args.p, args.timeout))
            print(rows[-1], flush=True)
        # a rerun answers from the run store; quickstart only opens the dashboard, so rerun a measuring one
        rerun = next((n for n in ("quantization", "export_and_deploy") if n in args.only), args.only[0])
        if any(r["ok"] and r["notebook"] == f"{rerun}.ipynb" for r in rows):
            again = run_notebook(rerun, Path(d) / rerun, args.p, args.timeout)
            again["notebook"] += " (again, same run store)"
            rows.append(again)
    print(f"\n{'notebook':48} {'wall':>8} {'CPU':>8}")
    for r in rows:
        status = "" if r["ok"] else f"  FAILED: {r.get('error', '')[:80]}"
        print(f"{r['notebook']:48} {r['wall_s']:7.0f}s {r['cpu_s']:7.0f}s{status}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {"rows": rows, "params": dict(args.p), "load_average_1m_at_end": load, "env": fingerprint(None)},
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
