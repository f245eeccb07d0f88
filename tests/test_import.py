"""`import workbench` stays light and UI-free: no ipywidgets, no IPython, no network, no edge runtime (ExecuTorch,
LiteRT and what they pull are imported only when an edge pass or runner runs)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_workbench_never_imports_ui_modules():
    code = (
        "import sys, json, workbench, workbench.cli\n"
        "import importlib\n"
        "for m in ['workbench.report.notebook', 'workbench.search.run', 'workbench.report.charts', 'workbench.recipes.compose',\n"
        "          'workbench.passes.executorch', 'workbench.passes.litert', 'workbench.measure.delegation',\n"
        "          'workbench.measure.explain', 'workbench.deploy.bundle']:\n"
        "    try: importlib.import_module(m)\n"
        "    except ModuleNotFoundError as e:\n"
        "        if e.name != m: raise\n"
        "lazy = ('ipywidgets', 'IPython', 'executorch', 'litert_torch', 'ai_edge_litert', 'jax', 'torchao', 'coremltools')\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in lazy)))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(r.stdout) == []


def test_import_makes_no_network_call():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network call at import')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "import workbench, workbench.cli.main\nworkbench.cli.main.build_parser()\nprint('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_pip_check_is_clean():
    """Every installed distribution's requirements are met (the data-only wheels live outside site-packages)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
