"""A sample library as a wavetable bank: each note kept to its attack, then one short loop held.

Small General MIDI banks keep an instrument in a few kilobytes: TimGM6mb's and csound's sf_GMbank's violins,
saxophones and soft trumpets are 20-60 ms recordings whose loop is one or two periods of the waveform, held for as
long as the key is down. After the attack such a note is a still spectrum: no vibrato, no bow or breath noise, no
change of colour, only the loudness envelope. The training banks loop for 170-220 ms after a long attack and the
real notes do not loop at all, so a model that learnt from them can take a still violin for a wind instrument.
Looping the training libraries' notes in the same way gives the classes that sound too, from the same sources.

Each note keeps its first `attack` seconds (drawn per note), then a loop of whole periods (the lag, near the note's
nominal period, where the waveform best repeats) held to the note's length at the note's nominal pitch, with the
original's slow loudness envelope, so decays and swells stay. The result has the library layout of
irmas.data.samples and irmas.data.banknotes, which irmas.data.sampler plays.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import load_audio
from .sampler import MARKER, MAX_SAMPLE_SECONDS
from .samples import SAMPLE_SETS, read_sample_set

ATTACK_SECONDS = (0.02, 0.15)  # how much of each note's start is kept before the loop (after its onset)
MIN_LOOP_SAMPLES = 64  # a loop spans whole periods and at least this many samples, so its ends meet within 1 %
ENVELOPE_SECONDS = 0.1  # the loudness envelope carried over is this smooth: slower than vibrato's tremolo
WAVETABLE_VERSION = "1"


def period_lag(audio: np.ndarray, start: int, nominal: float) -> int:
    """The lag within 3 % of `nominal` samples at which `audio` from `start` best repeats itself."""
    low, high = max(2, int(np.floor(nominal * 0.97))), int(np.ceil(nominal * 1.03))
    width = high
    segment = audio[start:start + width]
    if len(audio) < start + high + width:
        return int(round(nominal))
    scores = [float(np.dot(segment, audio[start + lag:start + lag + width])) /
              (float(np.linalg.norm(audio[start + lag:start + lag + width])) + 1e-9) for lag in range(low, high + 1)]
    return low + int(np.argmax(scores))


def smooth_envelope(audio: np.ndarray, width: int) -> np.ndarray:
    """Per-sample RMS over a moving window of `width` samples."""
    kernel = np.ones(width) / width
    return np.sqrt(np.convolve(audio.astype(np.float64) ** 2, kernel, mode="same"))


def loop_note(audio: np.ndarray, key: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One recorded note -> its attack, then a loop of whole periods held to the same length and envelope."""
    loud = np.flatnonzero(np.abs(audio) > 0.02 * max(float(np.max(np.abs(audio))), 1e-9))
    if not len(loud):
        return audio
    start = int(loud[0] + rng.uniform(*ATTACK_SECONDS) * rate)
    period = rate / (440.0 * 2 ** ((key - 69) / 12))
    periods = max(int(rng.integers(1, 5)), int(np.ceil(MIN_LOOP_SAMPLES / period)))
    if start + 4 * periods * period >= len(audio):
        return audio  # too short to loop: kept as it is
    lag = period_lag(audio, start, periods * period)
    loop = np.append(audio[start:start + lag], audio[start])
    # played at the note's nominal pitch, as a bank tunes its loops, whatever the moment's vibrato or intonation
    positions = (np.arange(len(audio) - start) * lag / (periods * period)) % lag
    held = np.interp(positions, np.arange(lag + 1), loop)
    width = max(1, int(ENVELOPE_SECONDS * rate))
    gain = smooth_envelope(audio, width)[start:] / max(float(np.sqrt(np.mean(loop[:-1].astype(np.float64) ** 2))), 1e-9)
    return np.concatenate([audio[:start], held * gain]).astype(np.float32)


def loop_library(library: str | Path, out: str | Path, seed: int = 0, sample_rate: int = 22050) -> list[Path]:
    """Every set of the sample library `library` (fetched, or recorded by banknotes) looped into `out/<set>-loop/`;
    returns the new set folders. Deterministic per seed."""
    labels = {s.package: s.label for s in SAMPLE_SETS}
    folders = []
    for marker in sorted(Path(library).glob(f"*/{MARKER}")):
        info = json.loads(marker.read_text())
        label = info.get("label") or labels.get(info["package"])
        if not label:
            continue
        package = f"{info['package']}-loop"
        folder = Path(out) / package.replace("/", "__")
        folder.mkdir(parents=True, exist_ok=True)
        for sample in read_sample_set(marker.parent):
            rng = np.random.default_rng([seed, zlib.crc32(package.encode()), sample.note, sample.layer or 0])
            audio = load_audio(sample.path, target_rate=sample_rate)[:int(MAX_SAMPLE_SECONDS * sample_rate)]
            audio = loop_note(audio, sample.note, sample_rate, rng)
            peak = max(float(np.max(np.abs(audio))), 1e-9)
            sf.write(folder / f"{sample.path.stem}.wav", audio / peak * 0.9, sample_rate, subtype="PCM_16")
        (folder / MARKER).write_text(json.dumps({
            "package": package, "version": WAVETABLE_VERSION, "label": label, "seed": seed,
            "credit": f"{info.get('credit', info['package'])}; looped by irmas.data.wavetable"}) + "\n")
        folders.append(folder)
    return folders
