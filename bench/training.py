"""Training throughput: the loader alone vs full training steps, bundled and CNN14 configs.

On a machine with a GPU the steps are also timed there, in fp32 and under bf16 autocast (the front
end stays fp32 either way), with the GPU's peak memory.
"""

from __future__ import annotations

import resource
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

from irmas.labels import CODES
from train.data import CLIP_SAMPLES
from train.system import InstrumentSystem

from .common import table

CONFIGS = Path(__file__).resolve().parent.parent / "train" / "configs"
CPU_BATCH = {"starter.yaml": 32, "panns_cnn14.yaml": 4}  # CNN14 at 32 would take minutes per step here
GPU_BATCH = 32  # both configs' batch per process


def system_from_config(name: str) -> InstrumentSystem:
    """The model section of a training config, from scratch (throughput does not depend on the warm start)."""
    model_args = yaml.safe_load((CONFIGS / name).read_text())["model"]
    system = InstrumentSystem(**{**model_args, "panns_checkpoint": None, "unfreeze_epoch": 0})
    system.setup("fit")  # the memory layout `fit` trains in
    return system


def random_loader(batch: int, batches: int) -> DataLoader:
    n = batch * batches
    data = TensorDataset(torch.randn(n, CLIP_SAMPLES), torch.eye(len(CODES))[torch.randint(0, len(CODES), (n,))])
    return DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)


def loader_rate(loader: DataLoader) -> float:
    start, seen = time.perf_counter(), 0
    for _ in range(3):
        for x, _ in loader:
            seen += len(x)
    return seen / (time.perf_counter() - start)


def step_rate(system: InstrumentSystem, loader: DataLoader, device: str, bf16: bool) -> float:
    """Samples per second of whole training steps (augmentation, features, forward, backward, Adam);
    the first two steps warm up (cuDNN picks its algorithms there)."""
    system = system.to(device).train()
    optimizer = torch.optim.Adam(system.parameters(), lr=1e-3)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if bf16 else nullcontext()
    done, start = 0, 0.0
    for step, (x, y) in enumerate(loader):
        if step == 2:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast:
            loss = system.training_loss((x.to(device, non_blocking=True), y.to(device, non_blocking=True)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done += len(x) if step >= 2 else 0
    if device == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def run(steps: int = 10) -> str:
    rows = []
    for name, config in (("bundled", "starter.yaml"), ("3 x CNN14", "panns_cnn14.yaml")):
        loader = random_loader(CPU_BATCH[config], steps + 2)
        rate = step_rate(system_from_config(config), loader, "cpu", bf16=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append([name, "cpu fp32", CPU_BATCH[config], f"{loader_rate(loader):,.0f}", f"{rate:.1f}",
                     f"{peak:.0f} (RSS)"])
        if torch.cuda.is_available():
            loader = random_loader(GPU_BATCH, 5 * steps + 2)
            for bf16 in (False, True):
                torch.cuda.reset_peak_memory_stats()
                rate = step_rate(system_from_config(config), loader, "cuda", bf16)
                peak = torch.cuda.max_memory_allocated() / 2**20
                rows.append([name, f"cuda {'bf16' if bf16 else 'fp32'}", GPU_BATCH, "", f"{rate:,.0f}",
                             f"{peak:,.0f} (GPU)"])
    return table("Training throughput (samples/s)", ["config", "device", "batch", "loader alone",
                                                     "training steps", "peak MB"], rows)
