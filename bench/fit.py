"""A whole `train fit` of a config on generated IRMAS-size data: time per epoch in each phase, samples/s,
validation time and peak memory. For GPU machines, where single steps (`training`) leave out the loader,
validation and checkpointing; not part of the default `python -m bench` run.

    python -m bench.fit --config panns_cnn14.yaml --clips 6705 --epochs 2 --unfreeze-epoch 1

The audio is harmonic tones with noise in IRMAS's format (44.1 kHz stereo 16-bit, 3 s): time does not
depend on what is played. A config's PANNs warm start uses the real checkpoint when it is in the cache,
else a file in the official format with random weights; both that file and the tones come from the
tests' fixtures (one writer of the official layout, not two). Loading is timed, the values do not matter.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf
import torch
import yaml

from irmas.data.render import CLIP_SECONDS, OUT_RATE
from irmas.labels import CODES
from tests.conftest import tone

from .common import machine, table
from .training import CONFIGS


def write_class(folder: Path, code: str, clips: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (folder / code).mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        y = tone(CLIP_SECONDS, OUT_RATE, 110 * 2 ** rng.uniform(0, 4), amp=0.45)
        y = y + 0.025 * rng.standard_normal(len(y)).astype(np.float32)
        sf.write(folder / code / f"[{code}][nod][pop_roc]{seed:02d}{i:04d}__1.wav",
                 np.stack([y, 0.8 * y], axis=1), OUT_RATE, subtype="PCM_16")


def write_layout(folder: Path, clips: int) -> Path:
    """An IRMAS training-layout folder of `clips` files, spread evenly over the 11 classes (kept if it
    is already there, so several runs share one)."""
    per_class = -(-clips // len(CODES))
    if all(len(list((folder / code).glob("*.wav"))) == per_class for code in CODES):
        return folder
    # spawn, as the renderer does: forking a process whose torch thread pools already ran can deadlock
    with ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(write_class, [folder] * len(CODES), CODES, [per_class] * len(CODES), range(len(CODES))))
    return folder


class EpochTimer(L.Callback):
    """Wall time of each epoch's training batches and validation, and the samples trained."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []

    def _now(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, system) -> None:
        self.epochs.append({"start": self._now(), "samples": 0, "val": 0.0})

    def on_train_batch_end(self, trainer, system, outputs, batch, batch_idx) -> None:
        self.epochs[-1]["samples"] += len(batch[0])
        self.epochs[-1]["train_end"] = self._now()

    def on_validation_start(self, trainer, system) -> None:
        self._val_start = self._now()

    def on_validation_end(self, trainer, system) -> None:
        if self.epochs:  # not the sanity check
            self.epochs[-1]["val"] += self._now() - self._val_start

    def on_train_epoch_end(self, trainer, system) -> None:
        self.epochs[-1]["end"] = self._now()


def panns_file(folder: Path, channels: list[int]) -> str:
    from train.panns import CACHE_DIR, PANNS_FILE

    real = CACHE_DIR / PANNS_FILE
    if real.is_file():
        return str(real)
    from tests.test_model import panns_checkpoint

    panns_checkpoint(folder / PANNS_FILE, channels)
    return str(folder / PANNS_FILE)


def run(config: str, clips: int, epochs: int, unfreeze_epoch: int | None, extra: list[str],
        work: Path | None = None) -> str:
    from lightning.pytorch.cli import LightningCLI

    from train.data import IrmasDataModule
    from train.system import InstrumentSystem

    settings = yaml.safe_load((CONFIGS / config).read_text())
    work = work or Path(tempfile.mkdtemp(prefix="bench_fit_"))
    start = time.perf_counter()
    data = write_layout(work / "IRMAS-TrainingData", clips)
    written = time.perf_counter() - start
    # the generated clips alone: the config's mixtures (rendered or of sources) and negatives are not timed.
    # One process (not the starter's two DDP processes on CPU) taking the step all of them would take.
    processes = settings["trainer"].get("devices", 1)
    batch = settings["data"]["batch_size"] * (processes if isinstance(processes, int) else 1)
    args = ["--config", str(CONFIGS / config), f"--data.train_dirs=[{data}]", "--data.val_dirs=null",
            "--data.mixture_dirs=null", "--data.negative_dirs=null", "--data.source_mixtures=0",
            "--data.embedding_cache=null",
            "--trainer.devices=1", "--trainer.strategy=auto", f"--data.batch_size={batch}",
            f"--trainer.max_epochs={epochs}", f"--trainer.default_root_dir={work / 'runs'}",
            "--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    if settings["model"].get("panns_checkpoint"):
        args.append(f"--model.panns_checkpoint={panns_file(work, settings['model']['tower_channels'])}")
    if unfreeze_epoch is not None:
        args.append(f"--model.unfreeze_epoch={unfreeze_epoch}")
    start = time.perf_counter()
    cli = LightningCLI(InstrumentSystem, IrmasDataModule, args=args + extra, run=False,
                       save_config_kwargs={"overwrite": True})
    timer = EpochTimer()
    cli.trainer.callbacks.append(timer)
    built = time.perf_counter() - start
    start = time.perf_counter()
    cli.datamodule.setup("fit")
    loaded = time.perf_counter() - start
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    total = time.perf_counter() - start
    unfreeze = cli.model.hparams.unfreeze_epoch
    rows = []
    for i, e in enumerate(timer.epochs):
        train_s = e["train_end"] - e["start"]
        rows.append([i, "towers held" if i < unfreeze else "all training", e["samples"], f"{train_s:.1f}",
                     f"{e['samples'] / train_s:,.0f}", f"{e['val']:.1f}", f"{e['end'] - e['start']:.1f}"])
    peak = (f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB GPU" if torch.cuda.is_available()
            else "n/a (CPU)")
    setup = (f"{config}, {clips} clips ({len(cli.datamodule.train_set)} train / {len(cli.datamodule.val_set)} val), "
             f"precision {cli.trainer.precision}, batch {cli.datamodule.hparams.batch_size}, "
             f"{cli.datamodule.hparams.num_workers} loader workers{' ' + ' '.join(extra) if extra else ''}. "
             f"Writing the data {written:.0f} s, building the system {built:.1f} s, decoding the clips "
             f"{loaded:.0f} s, fit {total:.0f} s; peak memory {peak}.")
    return setup + table(f"`train fit` on {machine()}", ["epoch", "phase", "samples", "train s", "samples/s",
                                                        "validation s", "epoch s (with checkpoints)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="panns_cnn14.yaml", help="a file in train/configs")
    parser.add_argument("--clips", type=int, default=6705, help="IRMAS's training set has 6,705")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--unfreeze-epoch", type=int, default=None, help="default: the config's")
    parser.add_argument("--work", type=Path, default=None, help="folder for the data and runs (default: a new temp)")
    args, extra = parser.parse_known_args()
    sys.argv = sys.argv[:1]  # LightningCLI gets its arguments from `run`, not the command line
    print(run(args.config, args.clips, args.epochs, args.unfreeze_epoch, extra, args.work), flush=True)


if __name__ == "__main__":
    main()
