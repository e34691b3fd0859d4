"""Audio in: any file or microphone array -> mono float32 at SAMPLE_RATE, or a clear AudioError.

soundfile reads wav/flac/ogg (and mp3 with libsndfile >= 1.1); ffmpeg decodes whatever it cannot.
Every problem a user can cause is raised here, at the edge, as an AudioError with a readable sentence.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 22050
MIN_SECONDS = 0.1
MAX_SECONDS = 600.0  # 10 minutes; configurable per call
SILENCE_PEAK = 1e-4  # -80 dBFS: below this everywhere, there is nothing to recognise


class AudioError(ValueError):
    """Input that cannot be analysed; the message is meant for the user."""


def load_audio(path: str | os.PathLike, max_seconds: float = MAX_SECONDS,
               target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a file to mono float32 at `target_rate`, checking it is usable audio."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path.name}: no such file.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: the file is empty.")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        info = None
    if info is not None and info.frames > 0:
        _check_duration(info.frames / info.samplerate, max_seconds, path.name)
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{path.name}: the audio data is corrupt ({err}).") from None
        return prepare(data.T, sr, max_seconds, path.name, target_rate)
    decoded = _decode_with_ffmpeg(path, max_seconds, target_rate)
    return prepare(decoded, target_rate, max_seconds, path.name, target_rate)


def from_array(sample_rate: int, data: np.ndarray, max_seconds: float = MAX_SECONDS,
               target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Accept a `(sample_rate, samples)` pair as a microphone gives it; ints are scaled by their range.

    Samples are `(n,)` or `(n, channels)` as Gradio and soundfile lay them out.
    """
    data = np.asarray(data)
    if data.size == 0:
        raise AudioError("The recording is empty.")
    if np.issubdtype(data.dtype, np.integer):
        scale = float(np.iinfo(data.dtype).max) + 1.0
        data = data.astype(np.float32) / scale
    elif np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    else:
        raise AudioError(f"Samples of type {data.dtype} are not audio.")
    if data.ndim == 2:
        # (n, channels) with few channels; channel-first arrays are transposed back.
        data = data.T if data.shape[1] <= 8 else data
    elif data.ndim != 1:
        raise AudioError(f"Audio must be 1-D or 2-D, got shape {data.shape}.")
    return prepare(data, int(sample_rate), max_seconds, "The recording", target_rate)


def prepare(data: np.ndarray, sample_rate: int, max_seconds: float, what: str,
            target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Channel-first or mono samples -> checked mono float32 at `target_rate`."""
    if sample_rate <= 0:
        raise AudioError(f"{what}: invalid sample rate {sample_rate}.")
    data = np.atleast_2d(np.asarray(data, dtype=np.float32))
    if data.shape[1] == 0:
        raise AudioError(f"{what}: contains no samples.")
    _check_duration(data.shape[1] / sample_rate, max_seconds, what)
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{what}: contains invalid samples (NaN or infinity).")
    # Channel by channel: numpy's mean over axis 0 of a transposed (samples, channels) array is ~10x slower.
    mono = sum(data[1:], data[0]) / len(data)
    if sample_rate != target_rate:
        mono = resample(mono, sample_rate, target_rate)
    if np.max(np.abs(mono)) < SILENCE_PEAK:
        raise AudioError(f"{what}: is silent; there is nothing to recognise.")
    return np.ascontiguousarray(mono, dtype=np.float32)


def resample(mono: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """soxr "HQ" band-limited resampling to ceil(n * ratio) samples (what librosa's default gives)."""
    out = soxr.resample(mono, sample_rate, target_rate, quality="HQ")
    n = int(np.ceil(len(mono) * target_rate / sample_rate))
    return np.pad(out, (0, max(0, n - len(out))))[:n]


def _check_duration(seconds: float, max_seconds: float, what: str) -> None:
    if seconds < MIN_SECONDS:
        raise AudioError(f"{what}: is {seconds * 1000:.0f} ms long; at least {MIN_SECONDS:g} s is needed.")
    if seconds > max_seconds:
        raise AudioError(f"{what}: is {_readable(seconds)} long; the limit is {_readable(max_seconds)}.")


def _readable(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _decode_with_ffmpeg(path: Path, max_seconds: float, sample_rate: int) -> np.ndarray:
    """Formats libsndfile cannot read (mp3 on old builds, m4a, video soundtracks)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(f"{path.name}: not a format soundfile reads, and ffmpeg is not installed to decode it.")
    # Decode one second past the limit: enough to tell the file is too long without decoding an hour.
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-t", str(max_seconds + 1.0),
           "-map", "0:a:0", "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=300)
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        if any("matches no streams" in d for d in detail):
            raise AudioError(f"{path.name}: no audio found; the file has no audio stream.")
        raise AudioError(f"{path.name}: not an audio file, or a damaged one; it cannot be decoded.")
    return np.frombuffer(proc.stdout, dtype="<f4").copy()
