"""Recordings of any length -> per-instrument probabilities: 3 s windows, batched, averaged.

The model sees 3 s windows as in IRMAS training, each raised to the level of a training clip. Probabilities
are per-label sigmoids (multi-label: several instruments can be present); the per-window values are kept as a
timeline. A recording's probability of an instrument is its mean over the windows of the recording's strongest
20 s stretch for that instrument: over all windows for an IRMAS test excerpt (5-20 s), and for a long recording
whose instruments change, the instruments of each part that lasts about 20 s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import load_audio
from .labels import NAMES
from .model import InstrumentClassifier

WINDOW_SECONDS = 3.0
HOP_SECONDS = 1.5
STRETCH_SECONDS = 20.0  # the longest IRMAS test excerpt: recordings up to this long are averaged whole
BATCH_SIZE = 32
MAX_WINDOW_BOOST_DB = 40.0  # a window quieter than this under the recording's peak is near-silence: not raised further
LATEST_SECONDS = 5.0  # the live view's answer is about this much of the latest audio...
LATEST_HOP_SECONDS = 1.0  # ...as the mean of its 3 s windows this far apart (`bench live` chose both)
LATEST_HOLD = 0.05  # an instrument the live view names stays named until it falls this far under the threshold


def named(labels: list[str], probabilities: np.ndarray, threshold: float, named_before: tuple[str, ...] = (),
          hold: float = 0.0) -> list[str]:
    """Labels at or above the threshold, most probable first; those in `named_before` down to `threshold - hold`."""
    order = np.argsort(-probabilities)
    return [labels[i] for i in order if probabilities[i] >= threshold
            or (labels[i] in named_before and probabilities[i] >= threshold - hold)]


@dataclass
class Prediction:
    labels: list[str]
    probabilities: np.ndarray  # (n_labels,) clip level: mean over each label's strongest 20 s stretch
    timeline: np.ndarray  # (n_windows, n_labels)
    window_starts: np.ndarray  # (n_windows,) seconds
    threshold: float
    duration: float  # seconds of audio analysed
    notices: list[str] = field(default_factory=list)  # sentences on how well the input could be heard (irmas.audio)
    named_before: tuple[str, ...] = ()  # what the previous live answer named: kept down to threshold - hold
    hold: float = 0.0

    @property
    def detected(self) -> list[str]:
        """Labels at or above the threshold, most probable first; empty when none of them is heard."""
        return named(self.labels, self.probabilities, self.threshold, self.named_before, self.hold)

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
            "notices": self.notices,
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


def level_windows(frames: np.ndarray, max_boost_db: float = MAX_WINDOW_BOOST_DB) -> np.ndarray:
    """Raise each window of a peak-normalised recording to a peak of 1, by at most `max_boost_db`.

    Training clips are each peak-normalised 3 s clips, and the encoder branch's log-mel is level-dependent: a
    window 10 dB under the recording's peak (a soft passage, or a recording whose peak is one loud attack)
    changed the bundled model's answer on half of the real-note excerpts. Levelled, a window sounds as loud as
    the clips the model learnt from, whatever the rest of the recording does.
    """
    peaks = np.abs(frames).max(axis=1, keepdims=True)
    gain = 1.0 / np.maximum(peaks, 10 ** (-max_boost_db / 20))
    return (frames * gain).astype(np.float32)


def window_starts(n: int, window: int, hop: int) -> np.ndarray:
    """Start (in samples) of each window of a recording of n samples: every hop, plus one ending at the end."""
    starts = np.arange(0, max(n - window, 0) + 1, hop)
    if n > window and starts[-1] + window < n:
        starts = np.append(starts, n - window)  # cover the tail without padding
    return starts


def frame_windows(waveform: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut (windows, window) frames; a short clip, or the last partial window, is zero-padded.

    Returns the frames and each frame's start in samples.
    """
    starts = window_starts(len(waveform), window, hop)
    frames = np.zeros((len(starts), window), dtype=np.float32)
    for i, s in enumerate(starts):
        chunk = waveform[s:s + window]
        frames[i, :len(chunk)] = chunk
    return frames, starts


def strongest_stretch_mean(timeline: np.ndarray, windows_per_stretch: int) -> np.ndarray:
    """Per label, the largest mean over `windows_per_stretch` consecutive windows (all of them if fewer).

    A recording no longer than a stretch is averaged whole; in a longer one an instrument heard throughout
    any one stretch keeps about the probability it would have alone, while a lone window raises it by no
    more than its share of the stretch.
    """
    k = max(1, min(windows_per_stretch, len(timeline)))
    cumulative = np.concatenate([np.zeros((1, timeline.shape[1])), np.cumsum(timeline, axis=0, dtype=np.float64)])
    return ((cumulative[k:] - cumulative[:-k]) / k).max(axis=0).astype(np.float32)


@torch.inference_mode()
def predict_waveform(model: InstrumentClassifier, waveform: np.ndarray, hop_seconds: float = HOP_SECONDS,
                     threshold: float | None = None, batch_size: int = BATCH_SIZE,
                     notices: list[str] | None = None) -> Prediction:
    """Probabilities for a mono float32 recording at the model's sample rate; `notices` from loading it."""
    sr = model.sample_rate
    window, hop = int(WINDOW_SECONDS * sr), max(1, int(hop_seconds * sr))
    heard = normalize(waveform)
    if len(heard) < window:  # heard looped, not padded with silence: the model never trained on a clip that stops
        heard = np.resize(heard, window)  # (the Live tab's first seconds: 1 s looped 0.79 micro F1, padded 0.46)
    frames, starts = frame_windows(heard, window, hop)
    frames = level_windows(frames)
    device = next(model.parameters()).device
    probs = []
    for i in range(0, len(frames), batch_size):
        batch = torch.from_numpy(frames[i:i + batch_size]).to(device)
        probs.append(torch.sigmoid(model(batch)).float().cpu().numpy())
    timeline = np.concatenate(probs)
    windows_per_stretch = len(window_starts(int(STRETCH_SECONDS * sr), window, hop))
    return Prediction(
        labels=list(model.labels), probabilities=strongest_stretch_mean(timeline, windows_per_stretch),
        timeline=timeline, window_starts=starts / sr, threshold=model.threshold if threshold is None else threshold,
        duration=len(waveform) / sr, notices=list(notices or []),
    )


def predict_latest(model: InstrumentClassifier, audio: np.ndarray, seconds: float = LATEST_SECONDS,
                   hop_seconds: float = LATEST_HOP_SECONDS, named_before: tuple[str, ...] | list[str] = (),
                   hold: float = LATEST_HOLD) -> Prediction:
    """The live view's answer on the audio heard so far: the mean over the 3 s windows of its latest `seconds`;
    an instrument the previous answer named (`named_before`) stays named until it falls `hold` under the threshold.

    One 3 s window alone gave an answer that changed with every new second: an instrument near the threshold came
    and went. Several overlapping windows steady it, at the cost of naming a new instrument a little later, and
    the hold keeps one that hovers about the threshold from coming and going.
    """
    prediction = predict_waveform(model, audio[-int(seconds * model.sample_rate):], hop_seconds=hop_seconds)
    prediction.named_before, prediction.hold = tuple(named_before), hold
    return prediction


def predict_file(model: InstrumentClassifier, path: str | os.PathLike, **kwargs) -> Prediction:
    notices: list[str] = []
    waveform = load_audio(path, target_rate=model.sample_rate, notices=notices)
    return predict_waveform(model, waveform, notices=notices, **kwargs)
