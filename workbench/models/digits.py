"""The bundled digits-cnn: a small CNN trained locally in seconds on scikit-learn's 1797 real 8x8 digits, cached."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.artifact import file_sha256, torch_artifact
from ..data.splits import Split, TaskData, digits, subsample
from ..tasks import Classification
from .base import LoadedModel, model_fingerprint, torch_lib, train_cached


# ---- digits CNN ----------------------------------------------------------------------------
class DigitsCNN(torch_lib().nn.Module):  # type: ignore[misc]
    """Two 3x3 conv blocks and a small MLP: ~100k parameters, >97 % on 8x8 digits after ~10 s of training."""

    def __init__(self, c1: int = 32, c2: int = 64, hidden: int = 128, classes: int = 10):
        super().__init__()
        nn = torch_lib().nn
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 16, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, pixels):
        return self.classifier(self.features(pixels))


def train_classifier(
    module, train: Split, epochs: int = 12, lr: float = 2e-3, seed: int = 0, batch_size: int = 64
) -> None:
    """Plain Adam + cross-entropy training in place, deterministic for a given seed."""
    torch = torch_lib()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    (name,) = train.inputs
    x = torch.from_numpy(train.inputs[name])
    y = torch.from_numpy(train.labels)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    for _ in range(epochs):
        order = torch.from_numpy(gen.permutation(len(x)))
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(x[idx]), y[idx])
            loss.backward()
            opt.step()
    module.eval()


def load_digits(n_eval: int | None = None, seed: int = 0, **_: Any) -> LoadedModel:
    torch = torch_lib()
    data = digits(seed=seed)
    # v2: the initial weights are seeded too (v1 drew them from the unseeded global generator, so every
    # fresh cache trained other weights)
    key = model_fingerprint("digits-cnn-v2", data.spec)

    def train(module) -> None:
        prev = torch.get_num_threads()
        # one thread: the same float reductions in the same order, so every machine trains the same weights
        torch.set_num_threads(1)
        try:
            train_classifier(module, data.train, seed=seed)
        finally:
            torch.set_num_threads(prev)

    module, path, _ = train_cached("digits-cnn", key, DigitsCNN, train, seed)
    data = TaskData(
        data.train,
        subsample(data.eval, n_eval, seed),
        data.calibration,
        data.label_names,
        {**data.spec, "n_eval": n_eval},
    )
    return LoadedModel(
        name="digits-cnn",
        task=Classification(),
        data=data,
        baseline=torch_artifact(module, ("pixels",), path=path, precision="fp32"),
        source="trained locally on sklearn digits (1797 real 8x8 images), cached",
        fingerprint=model_fingerprint(key, file_sha256(path), data.spec),
        info={"model_type": "cnn"},
    )
