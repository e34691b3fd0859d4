"""Sound that holds none of the 11 instruments: noise, hum, clicks, tones, speech, drums alone, other instruments.

A model that only ever heard instruments calls white noise an electric guitar and a square wave a
trumpet. These 3 s clips are trained with all-zero targets, so that "none of the 11 is heard" is an
answer it can give. Every clip is seeded by (seed, index), as the renderer's recordings are; speech
comes from `espeak-ng` (Debian package) where it is installed, drums from the renderer's General MIDI
drum grooves played by a sound bank, other instruments (bassoon, brass, harp, double bass ...) from real
recorded notes (`python -m irmas data samples --others`) played by the sampler with the renderer's phrases.
`python -m irmas data negatives --out data/negatives [--kinds instrument --others data/others]`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

from .render import CLIP_SECONDS, room

KINDS = ("noise", "hum", "clicks", "tone", "clipped", "dc", "speech", "drums")  # the default kinds
INSTRUMENT = "instrument"  # other instruments: needs a library of OTHER_SETS
SPEECH_VOICES = ("en", "en-us", "en+m3", "en+f2", "en+f4", "de", "fr", "es", "it", "pt", "nl", "pl")
WORDS = ("the quick brown fox jumps over a lazy dog and then it rains on every window of the old house "
         "please call me back tomorrow morning we will meet at the station near the bridge seven eight "
         "nine ten hello this is a short message about the weather traffic news and the price of bread").split()


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, zlib.crc32(b"negative")])


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power falling as 1 / f**exponent: 0 white, 1 pink, 2 brown, -1 blue, -2 violet."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    return np.fft.irfft(spectrum / f ** (exponent / 2), n)


def _noise(rng, n, rate):
    return coloured_noise(rng, n, float(rng.choice([-2, -1, 0, 0, 1, 1, 2])))


def _hum(rng, n, rate):
    """Mains hum: 50 or 60 Hz and its harmonics (a buzz when the odd ones are strong), under a little hiss."""
    t = np.arange(n) / rate
    base = float(rng.choice([50.0, 60.0])) * rng.uniform(0.995, 1.005)
    y = sum(rng.uniform(0, 1) / k ** rng.uniform(0.3, 1.5) * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3))
            for k in range(1, int(rng.integers(2, 16))))
    return y + coloured_noise(rng, n, 0) * 10 ** (rng.uniform(-50, -20) / 20)


def _clicks(rng, n, rate):
    """Clicks and crackle (a needle on vinyl, a microphone knocked) over a faint noise floor."""
    y = coloured_noise(rng, n, float(rng.choice([0, 1]))) * 10 ** (rng.uniform(-60, -30) / 20)
    for _ in range(int(rng.integers(3, 60))):
        at, width = int(rng.integers(0, n - 64)), int(rng.integers(1, 64))
        y[at:at + width] += rng.uniform(-1, 1) * np.exp(-np.arange(width) / max(1, width / 4))
    return y


def _tone(rng, n, rate):
    """A pure tone (a test tone, a whistle, a tuning fork), steady or slowly swept."""
    t = np.arange(n) / rate
    f0, f1 = 2 ** rng.uniform(np.log2(40), np.log2(6000), 2)
    f1 = f0 if rng.random() < 0.6 else f1
    phase = 2 * np.pi * np.cumsum(f0 * (f1 / f0) ** (t / t[-1])) / rate
    return np.sin(phase)


def _clipped(rng, n, rate):
    """A square, sawtooth or hard-clipped sine: tones whose harmonics look like an instrument's."""
    t = np.arange(n) / rate
    f = 2 ** rng.uniform(np.log2(50), np.log2(3000))
    shape = rng.integers(3)
    if shape == 0:
        return np.sign(np.sin(2 * np.pi * f * t))
    if shape == 1:
        return 2 * ((f * t) % 1.0) - 1
    return np.clip(np.sin(2 * np.pi * f * t) * rng.uniform(2, 20), -1, 1)


def _dc(rng, n, rate):
    """A DC offset (a faulty interface) with a faint noise floor, or near-silence."""
    return rng.uniform(-1, 1) + coloured_noise(rng, n, float(rng.choice([0, 1]))) * 10 ** (rng.uniform(-80, -30) / 20)


def _speech(rng, n, rate):
    """Spoken words from espeak-ng in one of several voices, speeds and pitches."""
    words = " ".join(rng.choice(WORDS, size=int(rng.integers(6, 14))))
    voice = str(rng.choice(SPEECH_VOICES))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(120, 220))),
                        "-p", str(int(rng.integers(20, 80))), "-w", str(path), words],
                       check=True, capture_output=True)
        y, sr = sf.read(path, dtype="float32")
    import soxr

    y = soxr.resample(y, sr, rate)
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    return y + coloured_noise(rng, n, 1) * 10 ** (rng.uniform(-70, -35) / 20)


def _drums(rng, n, rate, bank: str):
    """A General MIDI drum groove played by `bank`, alone (drums are no IRMAS class)."""
    from . import render

    if not isinstance(render._RENDERER, render.Renderer) or render._RENDERER.sample_rate != rate:
        render._RENDERER = render.Renderer(rate)
    render._RENDERER.begin(bank)
    seconds = n / rate
    y = render._drums(rng, seconds, rng.uniform(60, 160))[:n].mean(axis=1)
    return np.pad(y, (0, n - len(y)))


_SAMPLERS: dict[tuple[str, int], object] = {}  # (library, rate) -> Sampler, its decoded notes kept per process


def _other_instruments(rng, n, rate, library: str):
    """One or two instruments outside the 11 playing one of the renderer's phrases (a melody or chords) in
    one key, the second quieter, as in the renderer's training clips."""
    from .render import MAJOR, MINOR, compose
    from .sampler import Sampler
    from .samples import OTHER

    if (library, rate) not in _SAMPLERS:
        _SAMPLERS[library, rate] = Sampler(rate)
        _SAMPLERS[library, rate].begin(library)
    sampler = _SAMPLERS[library, rate]
    packages = sampler.presets(OTHER)
    if not packages:
        raise FileNotFoundError(f"{library} holds no instruments outside the 11: "
                                f"fetch them with `python -m irmas data samples --others --out {library}`")
    seconds, tempo = n / rate, rng.uniform(60, 160)
    key, scale = int(rng.integers(12)), MAJOR if rng.random() < 0.6 else MINOR
    y = np.zeros(n)
    for level_db in [0.0] + ([rng.uniform(-12, -4)] if rng.random() < 0.35 else []):
        package = packages[int(rng.integers(len(packages)))]
        keys = sampler.playable(package, 21, 108)
        notes = compose(rng, seconds, min(keys), max(keys), bool(rng.random() < 0.3), tempo, key, scale, keys)
        y += sampler.part(package, notes, seconds, soft_darkening=rng.uniform(0, 2400))[:n, 0] * 10 ** (level_db / 20)
    return y


def negative_clip(kind: str, seed: int, index: int, sample_rate: int, bank: str = "FluidR3_GM",
                  others: str | Path | None = None) -> np.ndarray:
    """One 3 s mono clip of `kind`, peak level -40..-1 dBFS; rooms on a third of them."""
    rng = _rng(seed, index)
    n = int(CLIP_SECONDS * sample_rate)
    makers = {"noise": _noise, "hum": _hum, "clicks": _clicks, "tone": _tone, "clipped": _clipped, "dc": _dc,
              "speech": _speech, "drums": lambda r, n_, sr: _drums(r, n_, sr, bank),
              INSTRUMENT: lambda r, n_, sr: _other_instruments(r, n_, sr, str(others))}
    y = np.asarray(makers[kind](rng, n, sample_rate), dtype=np.float64)
    if kind not in ("dc", "clipped") and rng.random() < 0.33:
        y = room(rng, y[:, None], sample_rate)[:, 0]
    peak = np.max(np.abs(y))
    level = 10 ** (rng.uniform(-40, -1) / 20)
    return (y / peak * level if peak > 0 else y).astype(np.float32)


def available_kinds() -> tuple[str, ...]:
    """The kinds this machine can make: speech needs espeak-ng."""
    return tuple(k for k in KINDS if k != "speech" or shutil.which("espeak-ng"))


def render_negatives(out: str | Path, count: int, seed: int = 0, sample_rate: int = 22050,
                     bank: str = "FluidR3_GM", kinds: tuple[str, ...] | None = None,
                     others: str | Path | None = None) -> list[Path]:
    """Write `count` clips `out/<kind>-<index>.wav` (16-bit), the kinds in turn; returns the paths. `others`:
    the library of instruments outside the 11 that kind "instrument" plays."""
    kinds = kinds or available_kinds()
    if "speech" in kinds and not shutil.which("espeak-ng"):
        raise FileNotFoundError("speech negatives need espeak-ng: sudo apt-get install espeak-ng")
    if INSTRUMENT in kinds and others is None:
        raise FileNotFoundError("other instruments need their notes: python -m irmas data samples --others "
                                "--out data/others, then --others data/others")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        path = out / f"{kind}-{i:05d}.wav"
        sf.write(path, negative_clip(kind, seed, i, sample_rate, bank, others), sample_rate, subtype="PCM_16")
        paths.append(path)
    return paths
