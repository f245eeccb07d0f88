"""ipywidget panels over the workbench library: each usable alone, all together in ``Workbench()``.

>>> from widgets import Workbench
>>> Workbench("digits-cnn")        # doctest: +SKIP

The panels hold no compute: they call ``workbench``'s public API on one worker thread.
"""

from __future__ import annotations

from ._common import Worker
from .budget_panel import BudgetPanel
from .dashboard import Workbench
from .data import DataPicker
from .lm_settings import LMRecipePanel
from .model import ModelPicker
from .results import ResultsPanel
from .run import RunPanel
from .search_panel import SearchPanel
from .settings import DistillationPanel, PruningPanel, QuantizationPanel

__all__ = [
    "Workbench",
    "ModelPicker",
    "DataPicker",
    "QuantizationPanel",
    "LMRecipePanel",
    "PruningPanel",
    "DistillationPanel",
    "BudgetPanel",
    "RunPanel",
    "ResultsPanel",
    "SearchPanel",
    "Worker",
]
