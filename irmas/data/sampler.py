"""A sampler in numpy: plays the renderer's pieces with real recorded notes (irmas.data.samples) instead of a bank.

It has the FluidSynth renderer's interface (`begin`, `presets`, `playable`, `part`), so the same phrase
generator, dynamics, rooms and levels (irmas.data.render) play the same music on real recordings. A note is
the nearest sampled note, resampled to pitch (and tempo, as a tape would: a few semitones at most), the
velocity layer nearest its velocity where a set has several, cut to the note's length with a release fade,
scaled by velocity and darkened when soft. Drums, which no sample set holds, are synthesised (noise and
swept sines). A preset is a sample set's package name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soxr

from .samples import OTHER_SETS, SAMPLE_SETS, read_sample_set

MAX_SHIFT = 4  # semitones a sampled note is stretched at most (a library's marker may allow more): farther keys are
#               not playable
MAX_SAMPLE_SECONDS = 6.0  # longest part of a sampled note kept (the longest rendered note is shorter)
RELEASE_SECONDS = (0.08, 0.4)  # fade after a note's end, shortest for short notes
MARKER = ".irmas-unpacked.json"
# Names the audio the sampler makes for a seed (RENDERER_VERSION names the rest): change it with the output.
SAMPLER_VERSION = "1"


def is_sample_library(path: str | Path) -> bool:
    """A folder `python -m irmas data samples` wrote (one subfolder per fetched set)."""
    path = Path(path)
    return path.is_dir() and any(path.glob(f"*/{MARKER}"))


def library_sets(path: str | Path) -> list[dict]:
    """What each fetched set in the library is: package, version, credit (for a render's manifest)."""
    return [json.loads(m.read_text()) for m in sorted(Path(path).glob(f"*/{MARKER}"))]


class Sampler:
    """Real-sample "bank" for one process; decoded notes are cached per set."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._sets: dict[str, tuple[str, Path]] = {}  # package -> (label, folder)
        self._max_shift: dict[str, int] = {}  # package -> semitones a note of it is stretched at most
        self._notes: dict[str, list[tuple[int, int | None, np.ndarray]]] = {}
        self.bank_path = ""

    def begin(self, library: str) -> None:
        """Use the sample sets fetched into `library` (stateless between recordings, unlike a synth)."""
        self.bank_path = str(library)
        labels = {s.package: s.label for s in SAMPLE_SETS + OTHER_SETS}
        self._sets, self._max_shift = {}, {}
        for marker in sorted(Path(library).glob(f"*/{MARKER}")):
            info = json.loads(marker.read_text())
            label = info.get("label") or labels.get(info["package"])  # a bank's notes name their class
            if label:
                self._sets[info["package"]] = (label, marker.parent)
                self._max_shift[info["package"]] = int(info.get("max_shift", MAX_SHIFT))

    def codes(self) -> tuple[str, ...]:
        """The IRMAS classes the library can play, in the model's order."""
        from ..labels import CODES

        return tuple(c for c in CODES if self.presets(c))

    def presets(self, code: str) -> tuple[str, ...]:
        """The sets that play IRMAS class `code` (empty: the library has none, e.g. voice)."""
        return tuple(p for p, (label, _) in self._sets.items() if label == code)

    def _load(self, package: str) -> list[tuple[int, int | None, np.ndarray]]:
        if package not in self._notes:
            from ..audio import load_audio  # decoding and resampling as for any user file

            notes = []
            for sample in read_sample_set(self._sets[package][1]):
                audio = load_audio(sample.path, target_rate=self.sample_rate)[:int(MAX_SAMPLE_SECONDS *
                                                                                   self.sample_rate)]
                notes.append((sample.note, sample.layer, audio / max(float(np.max(np.abs(audio))), 1e-6)))
            self._notes[package] = notes
        return self._notes[package]

    def playable(self, package: str, low: int, high: int) -> frozenset[int]:
        if package not in self._sets:
            return frozenset()
        sampled, shift = {note for note, _, _ in self._load(package)}, self._max_shift[package]
        return frozenset(k for k in range(low, high + 1) if any(abs(k - s) <= shift for s in sampled))

    def part(self, package: str, notes, seconds: float, drums: bool = False,
             soft_darkening: float = 0.0) -> np.ndarray:
        """One instrument's notes dry, (samples, 2) float32 at the renderer's TARGET_RMS."""
        from .render import TARGET_RMS

        total = int(seconds * self.sample_rate)
        out = np.zeros(total, dtype=np.float32)
        if drums:
            _drum_kit(out, notes, self.sample_rate)
        else:
            recorded = self._load(package)
            layers = sorted({layer for _, layer, _ in recorded if layer is not None})
            for start, end, key, velocity in notes:
                self._note(out, recorded, layers, start, end, key, velocity, soft_darkening)
        rms = float(np.sqrt(np.mean(out ** 2)))
        out = out * (TARGET_RMS / rms) if rms > 1e-6 else out
        return np.repeat(out[:, None], 2, axis=1)

    def _note(self, out, recorded, layers, start, end, key, velocity, soft_darkening) -> None:
        rate = self.sample_rate
        begin = int(start * rate)
        if begin >= len(out):
            return
        layer = None
        if layers:  # the set's velocity layers span soft to loud: pick the one at this velocity's place
            layer = layers[min(len(layers) - 1, int(velocity / 128 * len(layers)))]
        candidates = [(abs(n - key), n, a) for n, lyr, a in recorded if lyr == layer] or \
                     [(abs(n - key), n, a) for n, _, a in recorded]
        _, sampled, audio = min(candidates, key=lambda c: c[0])
        length = max(end - start, 0.05)
        release = float(np.clip(0.25 * length, *RELEASE_SECONDS))
        n = min(int((length + release) * rate), len(out) - begin)
        ratio = 2.0 ** ((key - sampled) / 12)  # > 1 plays faster and higher
        need = int(np.ceil(n * ratio)) + 2
        piece = audio[:need]
        if ratio != 1.0:
            piece = soxr.resample(piece, rate * ratio, rate, quality="HQ").astype(np.float32)
        piece = piece[:n]
        if not len(piece):
            return
        envelope = np.ones(len(piece), dtype=np.float32)
        hold = int(length * rate)
        if hold < len(piece):
            envelope[hold:] = np.linspace(1.0, 0.0, len(piece) - hold, dtype=np.float32)
        fade_in = min(len(piece), int(0.003 * rate))  # no click where a sample is cut mid-waveform
        envelope[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
        gain = (velocity / 127) ** 1.5
        piece = piece * envelope * gain
        if soft_darkening > 0:  # as the FluidSynth modulator: cutoff lower by cents x (1 - velocity / 127)
            piece = _lowpass(piece, 13500.0 * 2 ** (-soft_darkening * (1 - velocity / 127) / 1200), rate)
        out[begin:begin + len(piece)] += piece


def _lowpass(x: np.ndarray, cutoff: float, rate: int) -> np.ndarray:
    """Two passes of a one-pole low-pass (12 dB per octave above `cutoff`)."""
    from scipy.signal import lfilter

    if cutoff >= rate / 2:
        return x
    a = float(np.exp(-2 * np.pi * cutoff / rate))
    return lfilter([1 - a], [1, -a], lfilter([1 - a], [1, -a], x)).astype(np.float32)


def _drum_kit(out: np.ndarray, notes, rate: int) -> None:
    """General MIDI kick (36), snare (38) and hi-hat (42) hits as noise and swept sines, seeded by the notes."""
    rng = np.random.default_rng(len(notes))
    for start, _, key, velocity in notes:
        begin = int(start * rate)
        if begin >= len(out):
            continue
        n = min(int((0.35 if key == 36 else 0.2 if key == 38 else 0.06) * rate), len(out) - begin)
        t = np.arange(n) / rate
        if key == 36:
            hit = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 12)
        elif key == 38:
            hit = (0.6 * rng.standard_normal(n) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 25)
        else:
            hit = np.diff(rng.standard_normal(n + 1)) * np.exp(-t * 60)  # bright: differenced noise
        out[begin:begin + n] += (velocity / 127) * hit.astype(np.float32)
