"""Recordings of any length -> per-instrument probabilities: 3 s windows, batched, averaged.

The model sees 3 s windows as in IRMAS training. Probabilities are per-label sigmoids (multi-label:
several instruments can be present), averaged over windows for the clip; the per-window values are
kept as a timeline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .audio import load_audio
from .labels import NAMES
from .model import InstrumentClassifier

WINDOW_SECONDS = 3.0
HOP_SECONDS = 1.5
BATCH_SIZE = 32


@dataclass
class Prediction:
    labels: list[str]
    probabilities: np.ndarray  # (n_labels,) clip level
    timeline: np.ndarray  # (n_windows, n_labels)
    window_starts: np.ndarray  # (n_windows,) seconds
    threshold: float
    duration: float  # seconds of audio analysed

    @property
    def detected(self) -> list[str]:
        """Labels at or above the threshold, most probable first; empty when none of them is heard."""
        order = np.argsort(-self.probabilities)
        return [self.labels[i] for i in order if self.probabilities[i] >= self.threshold]

    @property
    def summary(self) -> str:
        """One sentence for people: what was heard, or plainly that none of the instruments was."""
        names = [NAMES.get(c, c) for c in self.detected]
        if names:
            heard = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            return f"Heard: {heard}."
        top = int(np.argmax(self.probabilities))
        return (f"None of the {len(self.labels)} instruments is heard (the closest, "
                f"{NAMES.get(self.labels[top], self.labels[top])}, is at {self.probabilities[top]:.2f}, "
                f"below the threshold {self.threshold:.2f}).")

    def to_dict(self) -> dict:
        return {
            "probabilities": {c: round(float(p), 4) for c, p in zip(self.labels, self.probabilities)},
            "detected": self.detected,
            "detected_names": [NAMES.get(c, c) for c in self.detected],
            "summary": self.summary,
            "threshold": self.threshold,
            "duration": round(self.duration, 3),
            # float64 before rounding: float32 values print as 0.062300000339746475
            "timeline": {"window_starts": [round(float(s), 3) for s in self.window_starts],
                         "probabilities": np.round(self.timeline.astype(np.float64), 4).tolist()},
        }


def normalize(waveform: np.ndarray) -> np.ndarray:
    """Peak-normalise a recording, so the model sees the same level however loud it was recorded."""
    peak = float(np.max(np.abs(waveform)))
    return waveform / peak if peak > 0 else waveform


def frame_windows(waveform: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut (windows, window) frames; a short clip, or the last partial window, is zero-padded.

    Returns the frames and each frame's start in samples.
    """
    n = len(waveform)
    starts = np.arange(0, max(n - window, 0) + 1, hop)
    if n > window and starts[-1] + window < n:
        starts = np.append(starts, n - window)  # cover the tail without padding
    frames = np.zeros((len(starts), window), dtype=np.float32)
    for i, s in enumerate(starts):
        chunk = waveform[s:s + window]
        frames[i, :len(chunk)] = chunk
    return frames, starts


@torch.inference_mode()
def predict_waveform(model: InstrumentClassifier, waveform: np.ndarray, hop_seconds: float = HOP_SECONDS,
                     threshold: float | None = None, batch_size: int = BATCH_SIZE) -> Prediction:
    """Probabilities for a mono float32 recording at the model's sample rate."""
    sr = model.sample_rate
    frames, starts = frame_windows(normalize(waveform), int(WINDOW_SECONDS * sr), max(1, int(hop_seconds * sr)))
    device = next(model.parameters()).device
    probs = []
    for i in range(0, len(frames), batch_size):
        batch = torch.from_numpy(frames[i:i + batch_size]).to(device)
        probs.append(torch.sigmoid(model(batch)).float().cpu().numpy())
    timeline = np.concatenate(probs)
    return Prediction(
        labels=list(model.labels), probabilities=timeline.mean(axis=0), timeline=timeline,
        window_starts=starts / sr, threshold=model.threshold if threshold is None else threshold,
        duration=len(waveform) / sr,
    )


def predict_file(model: InstrumentClassifier, path: str | os.PathLike, **kwargs) -> Prediction:
    return predict_waveform(model, load_audio(path, target_rate=model.sample_rate), **kwargs)
