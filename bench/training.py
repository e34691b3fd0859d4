"""Training throughput: the loader alone vs full training steps, bundled and CNN14 configs."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

from train.system import InstrumentSystem

from .common import table

CONFIGS = Path(__file__).resolve().parent.parent / "train" / "configs"


def system_from_config(name: str) -> InstrumentSystem:
    """The model section of a training config, from scratch (throughput does not depend on the warm start)."""
    model_args = yaml.safe_load((CONFIGS / name).read_text())["model"]
    system = InstrumentSystem(**{**model_args, "panns_checkpoint": None, "unfreeze_epoch": 0})
    system.setup("fit")  # the memory layout `fit` trains in
    return system


def run(steps: int = 10) -> str:
    rows = []
    for name, config, batch in (("bundled", "starter.yaml", 32), ("3 x CNN14", "panns_cnn14.yaml", 4)):
        n = batch * (steps + 1)
        data = TensorDataset(torch.randn(n, 66150), torch.eye(11)[torch.randint(0, 11, (n,))])
        loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
        start, seen = time.perf_counter(), 0
        for _ in range(3):
            for x, _ in loader:
                seen += len(x)
        loader_rate = seen / (time.perf_counter() - start)
        system = system_from_config(config)
        optimizer = torch.optim.Adam(system.parameters(), lr=1e-3)
        system.train()
        it = iter(loader)
        done, start = 0, None
        for step in range(steps + 1):
            x, y = next(it)
            loss = system.training_loss((x, y))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step == 0:
                start = time.perf_counter()  # the first step warms up
            else:
                done += len(x)
        rate = done / (time.perf_counter() - start)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append([name, batch, f"{loader_rate:,.0f}", f"{rate:.1f}", f"{peak:.0f}"])
    return table("Training throughput on this CPU (samples/s)", ["config", "batch", "loader alone",
                                                                 "training steps", "peak RSS MB so far"], rows)
