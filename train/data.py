"""IRMAS-layout folders -> in-memory 3 s clips at the model's sample rate, for Lightning.

Clips are decoded once (IRMAS training data is ~1 h of audio: ~0.6 GB as float32 at 22.05 kHz), so
the loader only indexes memory and never limits the training step. Augmentation happens on batches
inside the system, where it is cheap and identical on every device.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import TensorDataset
from torchdata.stateful_dataloader import StatefulDataLoader
from tqdm import tqdm

from irmas.audio import SAMPLE_RATE, AudioError, load_audio
from irmas.data.layouts import Example, read_training, split_by_recording
from irmas.labels import CODES
from irmas.predict import WINDOW_SECONDS, normalize

CLIP_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)


def load_clips(examples: list[Example], desc: str = "load") -> tuple[torch.Tensor, torch.Tensor, int]:
    """Decode, normalise and fit each clip to 3 s; returns waveforms, multi-hot targets, files skipped."""
    waves, targets, skipped = [], [], 0
    for ex in tqdm(examples, desc=desc, unit="file", leave=False):
        try:
            y = normalize(load_audio(ex.path))
        except AudioError as err:
            warnings.warn(f"skipped {ex.path}: {err}")
            skipped += 1
            continue
        clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
        clip[:min(len(y), CLIP_SAMPLES)] = y[:CLIP_SAMPLES]
        waves.append(clip)
        target = np.zeros(len(CODES), dtype=np.float32)
        target[[CODES.index(c) for c in ex.labels]] = 1.0
        targets.append(target)
    if skipped:
        warnings.warn(f"{skipped} of {len(examples)} files could not be read and were skipped")
    return torch.from_numpy(np.stack(waves)), torch.from_numpy(np.stack(targets)), skipped


class IrmasDataModule(L.LightningDataModule):
    """Training-layout folders (real IRMAS or rendered). Validation: `val_dirs` if given (e.g. another
    sound bank, to measure generalisation), else a recording-disjoint split of the training folders."""

    def __init__(self, train_dirs: list[str], val_dirs: list[str] | None = None, val_fraction: float = 0.15,
                 batch_size: int = 32, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        examples = [ex for d in hp.train_dirs for ex in read_training(Path(d))]
        if not examples:
            raise FileNotFoundError(f"no IRMAS training-layout audio under {hp.train_dirs}")
        if hp.val_dirs:
            train, val = examples, [ex for d in hp.val_dirs for ex in read_training(Path(d))]
        else:
            train, val = split_by_recording(examples, hp.val_fraction, hp.seed)
        x, y, _ = load_clips(train, "load train")
        self.train_set = TensorDataset(x, y)
        x, y, _ = load_clips(val, "load val")
        self.val_set = TensorDataset(x, y)

    def train_dataloader(self) -> StatefulDataLoader:
        # Stateful: Lightning stores its position in checkpoints, so a run killed mid-epoch resumes
        # on the next batch of the same shuffled order.
        return StatefulDataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.hparams.num_workers)

    def val_dataloader(self) -> StatefulDataLoader:
        return StatefulDataLoader(self.val_set, batch_size=self.hparams.batch_size * 2, num_workers=self.hparams.num_workers)
