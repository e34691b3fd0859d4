"""Physical models as a sound source: the Synthesis ToolKit's instruments (Debian's `stk`, its `stk-demo`).

A clarinet, saxophone, flute, trumpet, bowed string or plucked string modelled from its acoustics is a maker
that no sample bank shares: a bore that gives a clarinet its odd harmonics, a reed, a bow, a lip. The source has
the FluidSynth renderer's interface (`begin`, `codes`, `presets`, `playable`, `part`), so irmas.data.render plays
the same pieces on it, with the same dynamics, rooms and levels. Each part is a SKINI score played by `stk-demo`
with its model's controls (vibrato, breath noise, reed, bow) and the seed of its noise (STK's is the clock, which
`faketime -f` freezes) drawn per part from a generator seeded by the notes, so a part is the same on every run.
Classes with no model of the instrument itself (piano, electric guitar, voice) are absent; drums are the
sampler's synthesised kit. STK: Perry R. Cook and Gary P. Scavone, a permissive licence (Debian's copyright file).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

STK = "STK"  # the bank name that selects this source (`irmas data render --bank STK`)
STK_DEMO = "stk-demo"
VOICES = 8  # notes sounding at once (chords, release tails)
# IRMAS class -> STK instruments that model it
MODELS: dict[str, tuple[str, ...]] = {
    "cel": ("Bowed",),
    "cla": ("Clarinet",),
    "flu": ("Flute",),
    "gac": ("Plucked", "StifKarp"),
    "org": ("BeeThree",),
    "sax": ("Saxofony",),
    "tru": ("Brass",),
    "vio": ("Bowed",),
}
# instrument -> {SKINI control number: (lowest, highest) value drawn per part}: the ranges keep every model
# speaking at the note's pitch (a lip tension or jet delay far from its default jumps a register or stays mute)
CONTROLS: dict[str, dict[int, tuple[float, float]]] = {
    "Bowed": {2: (50, 90), 4: (20, 90), 11: (40, 80), 1: (0, 40)},  # bow pressure, position, vibrato rate, depth
    "Clarinet": {2: (45, 80), 4: (5, 40), 11: (40, 80), 1: (0, 25)},  # reed stiffness, noise, vibrato
    "Flute": {4: (5, 45), 11: (40, 80), 1: (0, 35)},  # noise, vibrato
    "Saxofony": {29: (40, 80), 1: (0, 30)},  # vibrato (its reed, aperture and noise controls make it fall silent)
    "Brass": {11: (40, 80), 1: (0, 30)},  # vibrato
    "Plucked": {},
    "StifKarp": {4: (10, 100), 11: (70, 120), 1: (0, 40)},  # pickup position, sustain, stretch
    "BeeThree": {2: (20, 90), 4: (20, 90), 11: (30, 80), 1: (0, 30)},  # operator gains, LFO rate, depth
}
# instrument -> the keys it speaks on (Plucked goes out of tune above, Brass falls silent above)
SPEAKS: dict[str, tuple[int, int]] = {"Brass": (54, 80), "Plucked": (40, 74)}
# Names the audio this source makes for a seed (RENDERER_VERSION names the rest): change it with the output.
PHYSICAL_VERSION = "2"


def stk_demo() -> str | None:
    """The path of Debian's `stk-demo`, or None where the `stk` or `faketime` package is not installed (STK seeds
    its noise from the clock: `faketime` freezes the clock at a time drawn per part, which makes a part repeatable)."""
    return shutil.which(STK_DEMO) if shutil.which("faketime") else None


def score(notes, controls: dict[int, float]) -> str:
    """A SKINI score: the part's controls, then its notes as NoteOn / NoteOff with delta times in seconds."""
    events = sorted([(end, 0, "NoteOff", key, 64) for _, end, key, _ in notes] +
                    [(start, 1, "NoteOn", key, velocity) for start, _, key, velocity in notes])
    lines = [f"ControlChange 0.0 1 {number} {value:.1f}" for number, value in controls.items()]
    now = 0.0
    for time, _, kind, key, velocity in events:
        lines.append(f"{kind} {max(time - now, 0.0):.5f} 1 {key} {velocity}")
        now = max(now, time)
    return "\n".join(lines) + "\n"


class PhysicalModels:
    """STK "bank" for one process: each part is one `stk-demo` run (milliseconds per second of audio)."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self.bank_path = STK

    def begin(self, bank: str) -> None:
        """Stateless between recordings: nothing to reset."""

    def codes(self) -> tuple[str, ...]:
        from ..labels import CODES

        return tuple(c for c in CODES if c in MODELS)

    def presets(self, code: str) -> tuple[str, ...]:
        return MODELS.get(code, ())

    def playable(self, instrument: str, low: int, high: int) -> frozenset[int]:
        lowest, highest = SPEAKS.get(instrument, (low, high))
        return frozenset(range(max(low, lowest), min(high, highest) + 1))

    def part(self, instrument: str, notes, seconds: float, drums: bool = False,
             soft_darkening: float = 0.0) -> np.ndarray:
        """One instrument's notes dry, (samples, 2) float32 at the renderer's TARGET_RMS. The models darken soft
        notes themselves (less breath, lighter bow), so `soft_darkening` is not applied."""
        from .render import TARGET_RMS
        from .sampler import _drum_kit

        total = int(seconds * self.sample_rate)
        if drums:
            out = np.zeros(total, dtype=np.float32)
            _drum_kit(out, notes, self.sample_rate)
        else:
            out = self._play(instrument, notes, total)
        rms = float(np.sqrt(np.mean(out ** 2)))
        out = out * (TARGET_RMS / rms) if rms > 1e-6 else out
        return np.repeat(out[:, None], 2, axis=1)

    def _play(self, instrument: str, notes, total: int) -> np.ndarray:
        program = stk_demo()
        if program is None:
            raise FileNotFoundError("stk-demo or faketime not found: apt install stk faketime")
        rng = np.random.default_rng(zlib.crc32(repr((instrument, notes)).encode()))
        controls = {number: float(rng.uniform(lo, hi)) for number, (lo, hi) in CONTROLS[instrument].items()}
        with tempfile.TemporaryDirectory() as tmp:
            ski, wav = Path(tmp) / "part.ski", Path(tmp) / "part.wav"
            if instrument == "Brass":  # the lips speak only where the pressure suits the pitch: higher is harder
                notes = [(s, e, k, int(np.clip(40 + 2.7 * (k - 54) + 0.25 * (v - 80), 30, 127)))
                         for s, e, k, v in notes]
            ski.write_text(score(notes, controls))
            clock = f"2020-01-01 00:{int(rng.integers(60)):02d}:{int(rng.integers(60)):02d}"  # the noise's seed
            # -f: frozen; without it faketime starts the clock there and lets it run, so a slow start (a loaded
            # machine) could pass into the next second, another seed
            subprocess.run(["faketime", "-f", clock, program, instrument, "-s", str(self.sample_rate),
                            "-n", str(VOICES), "-if", str(ski), "-ow", str(wav)],
                           cwd=tmp, capture_output=True, check=True, timeout=120)
            audio, rate = sf.read(wav, dtype="float32", always_2d=True)
        if rate != self.sample_rate:
            raise RuntimeError(f"stk-demo wrote {rate} Hz, asked for {self.sample_rate}")
        out = np.zeros(total, dtype=np.float32)
        n = min(total, len(audio))
        out[:n] = audio[:n].mean(axis=1)
        return out
