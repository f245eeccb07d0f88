"""Fixtures for the browser end-to-end tests (adapted from the shared uitest example).

- Playwright drives Debian's chromium (``apt-get install chromium``): Playwright's own browser download
  cannot work offline, so ``executable_path`` is forced here. Without chromium the tests are skipped.
- ``jupyter_lab`` starts a real JupyterLab on 127.0.0.1:<free port> with a token, in a temp folder
  holding a copy of the notebook, and shuts it down (kernels included) in teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def page(page):
    from playwright.sync_api import expect

    # 2 shared cores: be generous. expect() has its own 5 s default, not the page's.
    page.set_default_timeout(90_000)
    expect.set_options(timeout=90_000)
    return page


# ---- the server -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    def __init__(self, cwd: Path, env: dict[str, str]):
        self.cwd, self.port, self.token = cwd, _free_port(), uuid.uuid4().hex
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={cwd}",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")  # jupyter refuses to run as root otherwise
        self.log_path = cwd / "server.log"
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 90
        while True:  # poll the status endpoint (a condition, not a fixed sleep)
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited rc={self.proc.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab not ready in 90 s:\n{self.log()}") from None
                time.sleep(0.25)

    def url(self, path: str) -> str:
        return f"{self.base}{path}{'&' if '?' in path else '?'}token={self.token}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:  # clean: shuts the kernels down too
                req = urllib.request.Request(
                    f"{self.base}/api/shutdown", method="POST", headers={"Authorization": f"token {self.token}"}
                )
                urllib.request.urlopen(req, timeout=5)
                self.proc.wait(timeout=20)
            except Exception:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _isolated_env(d: Path) -> dict[str, str]:
    env = dict(os.environ)
    # fresh config/runtime/settings dirs: no user workspace or settings leak in
    env.update(
        JUPYTER_CONFIG_DIR=str(d / ".cfg"),
        JUPYTER_RUNTIME_DIR=str(d / ".rt"),
        JUPYTERLAB_SETTINGS_DIR=str(d / ".settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(d / ".ws"),
        PYTHONUNBUFFERED="1",
        WORKBENCH_STORE=str(d / ".workbench" / "runs.sqlite"),
    )
    (d / ".cfg" / "labconfig").mkdir(parents=True)
    (d / ".cfg" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    return env


@pytest.fixture
def lab_notebook(tmp_path):
    """A copy of notebooks/quickstart.ipynb in a fresh folder (with an empty run store)."""
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", tmp_path / "quickstart.ipynb")
    return tmp_path / "quickstart.ipynb"


@pytest.fixture
def jupyter_lab(lab_notebook):
    srv = LabServer(lab_notebook.parent, _isolated_env(lab_notebook.parent))
    yield srv
    srv.stop()


@pytest.fixture
def sensor_csv(lab_notebook) -> Path:
    """A user's sensor log beside the notebook, ``motion.csv``: one row per time step (ax, ay, az), 40 ``window``
    ids of 50 steps, an ``activity`` per window (walk: a 1.5 Hz swing, rest: noise; 20 each). The reader does not
    guess ``activity`` as the label, nor ``window`` as the group: the user names them in the column options."""
    import csv

    import numpy as np

    rng = np.random.default_rng(1)
    t = np.arange(50) / 10
    path = lab_notebook.parent / "motion.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["window", "ax", "ay", "az", "activity"])
        for i in range(40):
            act, amp = ("walk", 1.0) if i % 2 == 0 else ("rest", 0.05)
            for k in range(50):
                xyz = amp * np.sin(2 * np.pi * 1.5 * t[k] + np.arange(3)) + 0.05 * rng.standard_normal(3)
                out.writerow([i, *(f"{v:.4f}" for v in xyz), act])
    return path
