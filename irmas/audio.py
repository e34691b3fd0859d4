"""Audio in: any file or microphone array -> mono float32 at SAMPLE_RATE, or a clear AudioError.

soundfile (libsndfile) is the fast path for wav/flac/ogg/mp3; PyAV, whose wheels carry FFmpeg, decodes
everything else (m4a/aac, opus, webm, video soundtracks), so no system ffmpeg is needed. Files are read
block by block and downmixed as they come, so a 10-minute stereo file never sits in memory as float channels.
Every problem a user can cause is raised here, at the edge, as an AudioError with a readable sentence; input that
can be analysed but not well (a file on a very coarse sample grid) gets a notice, a sentence for the user beside the
answer.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 22050
MIN_SECONDS = 0.1
MAX_SECONDS = 600.0  # 10 minutes; configurable per call
SILENCE_PEAK = 1e-4  # -80 dBFS: below this everywhere, there is nothing to recognise
BLOCK_FRAMES = 1 << 16  # frames per block when reading files
# Fewer steps of its sample grid than this from zero to a file's peak (any 8-bit file; a 16-bit one recorded under
# about -42 dBFS): the quantisation noise, raised with the quiet windows, changes one answer in eight or more
# (`python -m bench robustness`; docs/experiments.md, 2026-12-04).
COARSE_STEPS = 256
GRID = 1 << 15  # samples are checked against the grid of 16-bit PCM and the coarser ones (8-bit: 256 of its steps)

log = logging.getLogger(__name__)


class AudioError(ValueError):
    """Input that cannot be analysed; the message is meant for the user."""


def load_audio(path: str | os.PathLike, max_seconds: float = MAX_SECONDS,
               target_rate: int = SAMPLE_RATE, notices: list[str] | None = None) -> np.ndarray:
    """Decode a file to mono float32 at `target_rate`, checking it is usable audio; sentences about how well it can
    be heard are appended to `notices` if given."""
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
        blocks, grid = [], SampleGrid()
        try:
            for block in sf.blocks(str(path), blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                grid.add(block)
                blocks.append(_downmix(block.T))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{path.name}: the audio data is corrupt ({err}).") from None
        mono = prepare(np.concatenate(blocks), info.samplerate, max_seconds, path.name, target_rate)
        grid.notice(path.name, notices)
        return mono
    mono, rate = _decode_with_pyav(path, max_seconds)
    return prepare(mono, rate, max_seconds, path.name, target_rate)


def from_array(sample_rate: int, data: np.ndarray, max_seconds: float = MAX_SECONDS,
               target_rate: int = SAMPLE_RATE, notices: list[str] | None = None) -> np.ndarray:
    """Accept a `(sample_rate, samples)` pair as a microphone gives it; ints are scaled by their range.

    Samples are `(n,)` or `(n, channels)` as Gradio and soundfile lay them out. `notices` as in `load_audio`.
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
    mono = prepare(data, int(sample_rate), max_seconds, "The recording", target_rate)
    grid = SampleGrid()
    grid.add(data)
    grid.notice("The recording", notices)
    return mono


class SampleGrid:
    """How coarse a file's samples are: the coarsest grid of 16-bit PCM or coarser (2^-15 times a power of two)
    that all of them lie on, and how many of its steps the peak spans. Float, 24-bit and lossy audio lie on none
    of these grids and count as fine. Fed block by block, as files are read."""

    def __init__(self):
        self.bits, self.peak, self.on_grid = 0, 0, True

    def add(self, samples: np.ndarray) -> None:
        if not self.on_grid:
            return
        scaled = np.asarray(samples, dtype=np.float32) * np.float32(GRID)
        ints = scaled.astype(np.int32)
        if not np.array_equal(ints, scaled):
            self.on_grid = False
            return
        magnitudes = np.abs(ints)
        self.bits |= int(np.bitwise_or.reduce(magnitudes, axis=None))
        self.peak = max(self.peak, int(magnitudes.max()))

    @property
    def steps(self) -> int | None:
        """Steps of the grid from zero to the peak; None for fine audio."""
        if not self.on_grid or self.bits == 0:
            return None
        return self.peak // (self.bits & -self.bits)  # the lowest bit any sample sets is the grid's step

    def notice(self, what: str, notices: list[str] | None) -> None:
        steps = self.steps
        if notices is not None and steps is not None and steps < COARSE_STEPS:
            notices.append(f"{what} is very coarse: its loudest sample is only {steps} steps above silence (8-bit "
                           "audio, or 16-bit audio recorded very quietly), so quieter instruments may be missed. A "
                           "louder recording, or one of 16 bits or more, is heard better.")


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
    mono = _downmix(data)
    if sample_rate != target_rate:
        mono = resample(mono, sample_rate, target_rate)
    if np.max(np.abs(mono)) < SILENCE_PEAK:
        raise AudioError(f"{what}: is silent; there is nothing to recognise.")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _downmix(channels: np.ndarray) -> np.ndarray:
    """(channels, n) -> (n,) mean. Channel by channel: numpy's mean over axis 0 of a transposed array is ~10x slower."""
    return channels[0].copy() if len(channels) == 1 else sum(channels[1:], channels[0]) / len(channels)


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


def _decode_with_pyav(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read: the first audio stream, through FFmpeg inside PyAV's wheel."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError):
        raise AudioError(f"{path.name}: not an audio file, or a damaged one; it cannot be decoded.") from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path.name}: no audio found; the file has no audio stream.")
        stream = container.streams.audio[0]
        if container.duration:  # microseconds, from the header: refuse a long file before decoding it
            _check_duration(container.duration / 1e6, max_seconds, path.name)
        rate = stream.codec_context.sample_rate or stream.rate
        # Decode one second past the limit at most: enough to tell a file without a header duration is too long.
        limit = int((max_seconds + 1.0) * rate)
        to_float = av.AudioResampler(format="fltp")  # planar float32, the stream's own layout and rate
        blocks, n = [], 0
        try:
            for frame in container.decode(stream):
                for out in to_float.resample(frame):
                    blocks.append(_downmix(out.to_ndarray()))
                    n += len(blocks[-1])
                if n > limit:
                    break
        except av.error.FFmpegError as err:
            if not blocks:
                raise AudioError(f"{path.name}: not an audio file, or a damaged one; it cannot be decoded.") from None
            log.warning("%s: decoding stopped early (%s); using the %.1f s before it.", path.name, err, n / rate)
    if not blocks:
        raise AudioError(f"{path.name}: no audio found; the audio stream is empty.")
    return np.concatenate(blocks), rate
