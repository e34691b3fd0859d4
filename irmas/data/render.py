"""Render IRMAS-layout audio from General MIDI sound banks with FluidSynth, or from real recorded notes.

Real IRMAS cannot be fetched everywhere and must not be redistributed, so the bundled model learns from
recorded-instrument sound banks instead. Each "recording" is a short random piece: a predominant
instrument (training layout, labelled) or 1-4 equal instruments (testing layout), optional quieter
accompaniment and drums, in a random key, tempo, register and dynamic. Parts are rendered dry one at
a time, normalised to a common loudness (so banks of different levels look alike), mixed in float,
and given a seeded room reverb; every random choice comes from a generator seeded by
(seed, bank, kind, index), and each fixed chunk of CHUNK consecutive recordings is rendered by one
fresh synth, so output does not depend on how work is spread over processes. A folder of real per-note
recordings (`python -m irmas data samples`) is played instead by irmas.data.sampler, and the bank `STK` by
irmas.data.physical's physical models, with the same music.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..labels import CODES
from ..memory import keep_freed_memory

OUT_RATE = 44100  # IRMAS audio: 44.1 kHz stereo 16-bit. Training data may use the model's 22,050 Hz instead:
# synthesis, reverb and decoding cost half or less, and the model never sees the band above 11,025 Hz anyway.
CLIP_SECONDS = 3.0
CLIPS_PER_RECORDING = 3  # consecutive excerpts of one piece share a recording id, as in IRMAS
TEST_SECONDS = (5.0, 20.0)
TARGET_RMS = 0.05  # every part is brought to this loudness before mixing
CHUNK = 8  # recordings per fresh synth: the unit of work, fixed so output never depends on scheduling
# Soft notes sound darker on real instruments, and in some banks (MuseScore_General's grand pianos: spectral
# centroid 493 Hz at velocity 25, 1,391 Hz at 120) but not in others (FluidR3_GM's: 1,760 Hz at both). A
# model that only heard the second kind calls a dark piano an organ. So each instrument part gets a default
# modulator that lowers the filter cutoff for soft notes, linear in velocity, by a random amount between 0
# and this (at velocity 0; a fixed -3,600 made FluidR3_GM's cellos darker than any MuseScore_General cello).
# A bank whose presets define their own linear velocity-to-cutoff modulator (MuseScore_General's do) keeps
# its own.
MAX_SOFT_DARKENING_CENTS = 4800

BANKS = {
    "FluidR3_GM": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "MuseScore_General": "/usr/share/sounds/sf3/MuseScore_General.sf3",
}

# Presets whose recordings a bank shares with a bank kept for evaluation only, never played from it: GeneralUser GS's
# Voice Oohs are TimGM6mb's and sf_GMbank's "Doo" samples (normalised cross-correlation 0.98-1.00 against every one).
SHARED_WITH_EVALUATION: dict[str, frozenset[int | tuple[int, int]]] = {"GeneralUser": frozenset({53})}

# code: (presets, lowest and highest MIDI note, plays chords). A preset is a General MIDI program
# (0-based) or (bank, program) for a bank's variation presets; each bank plays the ones it has. Several
# presets per class, so a class is more than one instrument maker's samples.
INSTRUMENTS: dict[str, tuple[tuple[int | tuple[int, int], ...], int, int, bool]] = {
    "cel": ((42,), 36, 76, False),
    "cla": ((71,), 50, 89, False),
    "flu": ((73, 72), 60, 96, False),
    "gac": ((24, 25, (8, 25)), 40, 79, True),  # nylon, steel, 12-string
    "gel": ((26, 27, 28, 29, 30, (8, 28)), 40, 84, True),  # jazz, clean, muted, overdrive, distortion, funk
    "org": ((16, 17, 18, 19, 20, (8, 16), (8, 19)), 36, 84, True),  # drawbar, percussive, rock, church, reed
    "pia": ((0, 1, 2, 3, (8, 0)), 33, 96, True),  # grand, bright, electric grand, honky-tonk, mellow grand
    "sax": ((64, 65, 66, 67), 44, 81, False),
    "tru": ((56, 59), 54, 82, False),
    "vio": ((40, 110, (8, 40)), 55, 93, False),  # violin, fiddle, slow violin
    "voi": ((52, 53), 48, 79, True),
}
# Unlabelled accompaniment, as in IRMAS where the other sounds are not annotated: bass, strings, pads.
ACCOMPANIMENT = ((32, 33, 34, 35, 48, 49, 50, 88, 89), 36, 72)
GENRES = ("cla", "pop_roc", "jaz_blu", "cou_fol", "lat_sou")
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)


def resolve_bank(bank: str) -> Path:
    """A known bank name -> its Debian path, a path to any .sf2/.sf3 file, a folder of fetched samples, or
    STK's `stk-demo` for the physical models."""
    from .physical import STK, stk_demo
    from .sampler import is_sample_library

    if bank == STK:
        if stk_demo() is None:
            raise FileNotFoundError("the STK physical models need Debian's stk and faketime: apt install stk faketime")
        return Path(stk_demo())
    path = Path(BANKS.get(bank, bank))
    if not path.is_file() and not is_sample_library(path):
        known = ", ".join(BANKS)
        raise FileNotFoundError(f"sound bank {bank!r} not found: give one of {known} (install the Debian packages "
                                f"fluid-soundfont-gm / musescore-general-soundfont), a path to a .sf2/.sf3 file, or a "
                                f"folder `python -m irmas data samples` fetched")
    return path


def bank_name(bank: str) -> str:
    return bank if bank in BANKS or bank == "STK" else Path(bank).stem


MANIFEST = "render.json"


# Names the audio this module renders for a seed: audio from other code (other presets, other mixing) is
# other data, so numbers measured on it must not be compared, nor a cache of it reused. Change it whenever
# the output changes; tests/test_data.py holds a checksum of a few rendered excerpts that fails until you do.
RENDERER_VERSION = "b551f8bcd391"


def read_manifest(bank_dir: str | os.PathLike) -> dict:
    """What `render_dataset` wrote into a bank's folder ({} if it was not rendered here)."""
    try:
        return json.loads((Path(bank_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class Job:
    bank: str
    kind: str  # "train" or "test"
    index: int
    seed: int
    out: Path
    sample_rate: int = OUT_RATE


# ----------------------------------------------------------------------------- musical material

def _rng(seed: int, bank: str, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(bank_name(bank).encode()), zlib.crc32(kind.encode()), index])


def compose(rng: np.random.Generator, seconds: float, low: int, high: int, chords: bool,
            tempo: float, key: int, scale: tuple[int, ...],
            playable: frozenset[int] | None = None) -> list[tuple[float, float, int, int]]:
    """Notes (start s, end s, MIDI key, velocity) of one part: a melody, or chords/arpeggios, on the
    scale's keys in [low, high] (and in `playable`, the keys the preset has samples for, if given)."""
    beat = 60.0 / tempo
    pitches = [p for p in range(low, high + 1) if (p - key) % 12 in scale and (playable is None or p in playable)]
    span = max(6, min(len(pitches) - 1, int(rng.integers(7, 15))))  # the register this piece uses
    lo = int(rng.integers(0, max(1, len(pitches) - span)))
    pitches = pitches[lo:lo + span + 1]
    rhythms = ((0.5, 1.0), (0.25, 0.5, 1.0), (1.0, 2.0), (0.5, 1.0, 2.0, 4.0))  # note lengths in beats
    lengths = rhythms[int(rng.integers(len(rhythms)))]
    legato = rng.uniform(0.6, 1.0)
    dynamic = rng.uniform(50, 115)
    notes, t, i = [], rng.uniform(0, 0.3) * beat, int(rng.integers(len(pitches)))
    style = "arpeggio" if chords and rng.random() < 0.35 else ("chords" if chords else "melody")
    while t < seconds:
        dur = float(rng.choice(lengths)) * beat
        vel = int(np.clip(dynamic + rng.normal(0, 8), 20, 127))
        i = int(np.clip(i + rng.integers(-3, 4), 0, len(pitches) - 1))
        if style == "melody":
            notes.append((t, t + dur * legato, pitches[i], vel))
        else:
            size = int(rng.integers(3, 5))
            chord = [pitches[min(i + 2 * k, len(pitches) - 1)] for k in range(size)]
            chord = sorted(set(chord))
            if style == "chords":
                strum = rng.uniform(0, 0.03)
                notes += [(t + k * strum, t + dur * legato, p, vel) for k, p in enumerate(chord)]
            else:
                step = dur / len(chord)
                notes += [(t + k * step, t + dur * legato, p, vel) for k, p in enumerate(chord)]
        t += dur
    return notes


def drum_pattern(rng: np.random.Generator, seconds: float, tempo: float) -> list[tuple[float, float, int, int]]:
    """A kick/snare/hi-hat groove on the General MIDI drum map."""
    step = 60.0 / tempo / 2  # eighth notes
    notes, n = [], 0
    swing = rng.uniform(0, 0.1) * step
    while n * step < seconds:
        t = n * step + (swing if n % 2 else 0)
        notes.append((t, t + 0.1, 42, int(rng.integers(50, 90))))  # closed hi-hat
        if n % 4 == 0 or (n % 8 == 5 and rng.random() < 0.5):
            notes.append((t, t + 0.1, 36, int(rng.integers(80, 120))))  # kick
        if n % 4 == 2:
            notes.append((t, t + 0.1, 38, int(rng.integers(70, 115))))  # snare
        n += 1
    return notes


# ----------------------------------------------------------------------------- synthesis

class Renderer:
    """FluidSynth for one process: a fresh synth per chunk of recordings, banks decoded once.

    A synth's output depends on its history (voice allocation, release tails), so each chunk of work
    starts on a new one and renders its recordings in order. A long-lived holder synth keeps every bank
    in FluidSynth's process-wide sample cache, which makes the new synth's `sfload` cheap (the .sf3
    alone takes seconds to decode). Output is read as float: pyfluidsynth's int16 path adds dither.
    """

    def __init__(self, sample_rate: int = OUT_RATE):
        import ctypes

        import fluidsynth  # pyfluidsynth: ctypes over Debian's libfluidsynth

        self._fluidsynth = fluidsynth
        self.sample_rate = sample_rate
        self._holder = fluidsynth.Synth()
        self._held: set[str] = set()
        self._playable: dict[tuple, frozenset[int]] = {}  # (bank, preset, low, high) -> keys
        self._probes: dict[str, tuple] = {}  # bank -> (synth, font) that only probes keys
        p, i = ctypes.c_void_p, ctypes.c_int
        self._write_float = fluidsynth.cfunc("fluid_synth_write_float", i, ("synth", p, 1), ("len", i, 1),
                                             ("lout", p, 1), ("loff", i, 1), ("lincr", i, 1),
                                             ("rout", p, 1), ("roff", i, 1), ("rincr", i, 1))
        self._add_default_mod = fluidsynth.cfunc("fluid_synth_add_default_mod", i, ("synth", p, 1),
                                                 ("mod", p, 1), ("mode", i, 1))
        self.synth = None
        self.font = -1
        self.rendered = 0  # samples so far: FluidSynth works in 64-sample blocks

    def begin(self, bank: str) -> None:
        """Start a chunk of recordings on a new synth with `bank` loaded."""
        path = str(resolve_bank(bank))
        if path not in self._held:
            self._holder.sfload(path)
            self._held.add(path)
        if self.synth is not None:
            self.synth.delete()
        self.synth = self._new_synth(path)
        self.font = self.synth.sfload(path)
        self.bank_path = path
        self.rendered = 0

    def _new_synth(self, path: str):
        """A dry synth for the bank at `path`: no reverb or chorus, the room comes later.

        A compressed (.sf3) bank took a new synth ~120 ms to load even from the sample cache; loading only the
        samples of the presets played (dynamic sample loading) takes ~30 ms and gives the same output, bit for
        bit. For .sf2 banks, which load in ~30 ms anyway, it does not (a few samples differ by up to 28 steps)."""
        return self._fluidsynth.Synth(gain=0.6, samplerate=self.sample_rate, **{
            "synth.reverb.active": 0, "synth.chorus.active": 0,
            "synth.dynamic-sample-loading": int(path.lower().endswith(".sf3"))})

    def _darken_soft_notes(self, cents: float) -> None:
        """From now on, a note's filter cutoff is lowered by `cents` x (1 - velocity / 127)."""
        fs = self._fluidsynth
        mod = fs.new_fluid_mod()
        fs.fluid_mod_set_source1(mod, fs.FLUID_MOD_VELOCITY,
                                 fs.FLUID_MOD_GC | fs.FLUID_MOD_LINEAR | fs.FLUID_MOD_UNIPOLAR | fs.FLUID_MOD_NEGATIVE)
        fs.fluid_mod_set_source2(mod, fs.FLUID_MOD_NONE, 0)
        fs.fluid_mod_set_dest(mod, 8)  # GEN_FILTERFC: the low-pass cutoff, in cents
        fs.fluid_mod_set_amount(mod, -cents)
        failed = self._add_default_mod(self.synth.synth, mod, 0)  # 0: FLUID_SYNTH_OVERWRITE; it keeps a copy
        fs.delete_fluid_mod(mod)
        if failed:
            raise RuntimeError("FluidSynth refused the velocity-to-cutoff modulator")

    def _read(self, synth, n: int) -> np.ndarray:
        """(n, 2) float32 stereo from `synth`."""
        out = np.zeros((n, 2), dtype=np.float32)
        if n:
            ptr = out.ctypes.data
            self._write_float(synth.synth, n, ptr, 0, 2, ptr, 1, 2)
        return out

    def _samples(self, n: int) -> np.ndarray:
        self.rendered += n
        return self._read(self.synth, n)

    def _drain(self, synth) -> int:
        """Read `synth` until its release tails are gone (at most about 5 s); returns the samples read."""
        for blocks in range(1, 201):
            if not np.any(self._read(synth, 1024)):
                break
        return blocks * 1024

    def _silence(self, chan: int) -> None:
        self.synth.cc(chan, 120, 0)  # all sound off, then render until the release tails are gone
        self.synth.system_reset()
        self.rendered += self._drain(self.synth)
        self._samples(-self.rendered % 64)

    def presets(self, code: str) -> tuple[int | tuple[int, int], ...]:
        """The General MIDI presets that may play IRMAS class `code`."""
        return INSTRUMENTS[code][0]

    def codes(self) -> tuple[str, ...]:
        return CODES

    def has(self, preset: int | tuple[int, int]) -> bool:
        """Whether the loaded bank defines this preset (variation presets differ between banks)."""
        if preset in SHARED_WITH_EVALUATION.get(bank_name(self.bank_path), ()):
            return False
        bank, program = preset if isinstance(preset, tuple) else (0, preset)
        return self.synth.sfpreset_name(self.font, bank, program) is not None

    def playable(self, preset: int | tuple[int, int], low: int, high: int) -> frozenset[int]:
        """The keys in [low, high] for which the current bank's preset sounds, soft and loud (empty if the
        bank lacks the preset). Banks leave keys out: FluidR3_GM's baritone sax has nothing above
        key 72, so a piece written over the class's whole range rendered clips in which the labelled
        instrument was silent. Probed once per process on a synth kept for probing, so the chunk's
        synth (whose history shapes its output) is not touched."""
        cache_key = (self.bank_path, preset, low, high)
        if cache_key not in self._playable:
            keys: set[int] = set()
            if self.has(preset):
                if self.bank_path not in self._probes:
                    probe = self._new_synth(self.bank_path)
                    self._probes[self.bank_path] = probe, probe.sfload(self.bank_path)
                probe, font = self._probes[self.bank_path]
                bank, program = preset if isinstance(preset, tuple) else (0, preset)
                probe.program_select(0, font, bank, program)
                for key in range(low, high + 1):
                    sounds = []
                    for velocity in (30, 120):
                        probe.noteon(0, key, velocity)
                        sounds.append(np.abs(self._read(probe, int(0.1 * self.sample_rate))).max() > 1e-5)
                        probe.cc(0, 120, 0)  # all sound off; read on until the last voice has gone
                        self._drain(probe)
                    if all(sounds):
                        keys.add(key)
            self._playable[cache_key] = frozenset(keys)
        return self._playable[cache_key]

    def part(self, preset: int | tuple[int, int], notes, seconds: float, drums: bool = False,
             soft_darkening: float = 0.0) -> np.ndarray:
        """Render one instrument's notes dry to (samples, 2) float32, at TARGET_RMS loudness, soft notes
        darker by up to `soft_darkening` cents of filter cutoff (see MAX_SOFT_DARKENING_CENTS)."""
        chan = 9 if drums else 0
        self._darken_soft_notes(soft_darkening)
        bank, program = preset if isinstance(preset, tuple) else (128 if drums else 0, preset)
        self.synth.program_select(chan, self.font, bank, program)
        events = sorted([(s, 1, k, v) for s, _, k, v in notes] + [(e, 0, k, 0) for _, e, k, _ in notes])
        total = int(seconds * self.sample_rate)
        blocks, pos = [], 0
        for t, on, key, vel in events:
            at = min(total, int(t * self.sample_rate))
            if at > pos:
                blocks.append(self._samples(at - pos))
                pos = at
            if pos >= total:
                break
            self.synth.noteon(chan, key, vel) if on else self.synth.noteoff(chan, key)
        if pos < total:
            blocks.append(self._samples(total - pos))
        self._silence(chan)
        audio = np.concatenate(blocks)
        rms = float(np.sqrt(np.mean(audio ** 2)))
        return audio * (TARGET_RMS / rms) if rms > 1e-6 else audio


def room(rng: np.random.Generator, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """A seeded synthetic room: exponentially decaying noise, mixed wet/dry."""
    from scipy.signal import oaconvolve

    rt60 = rng.uniform(0.2, 1.5)
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal((n, 2)).astype(np.float32) * np.exp(-6.9 * t / rt60)[:, None].astype(np.float32)
    ir /= np.sqrt(np.sum(ir ** 2, axis=0, keepdims=True))
    wet = oaconvolve(audio, ir, axes=0)[:len(audio)]  # each channel with its own response
    mix = rng.uniform(0.05, 0.35)
    return (1 - mix) * audio + mix * wet


def _finish(rng: np.random.Generator, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Reverb, then a random peak level between -12 and -1 dBFS."""
    audio = room(rng, audio, sample_rate)
    return audio / np.max(np.abs(audio)) * 10 ** (rng.uniform(-12, -1) / 20)


_RENDERER: Renderer | None = None


def render_chunk(jobs: list[Job]) -> list[Path]:
    """Render consecutive recordings of one bank on one fresh synth."""
    from .physical import STK, PhysicalModels
    from .sampler import Sampler, is_sample_library

    global _RENDERER
    kind = PhysicalModels if jobs[0].bank == STK else Sampler if is_sample_library(jobs[0].bank) else Renderer
    if not isinstance(_RENDERER, kind) or _RENDERER.sample_rate != jobs[0].sample_rate:
        _RENDERER = kind(jobs[0].sample_rate)
    _RENDERER.begin(jobs[0].bank)
    return [path for job in jobs for path in render_job(job)]


def render_job(job: Job) -> list[Path]:
    """Render one recording: CLIPS_PER_RECORDING training clips, or one test excerpt with its .txt."""
    rng = _rng(job.seed, job.bank, job.kind, job.index)
    key, scale = int(rng.integers(12)), (MAJOR if rng.random() < 0.6 else MINOR)
    tempo = rng.uniform(60, 160)
    drums = rng.random() < 0.4
    name, rate = bank_name(job.bank), job.sample_rate
    if job.kind == "train":
        code = CODES[job.index % len(CODES)]
        if code not in _RENDERER.codes():  # a sample library without this class (no singing voice)
            return []
        seconds = CLIP_SECONDS * CLIPS_PER_RECORDING
        mix = _instrument(rng, code, seconds, tempo, key, scale)
        for _ in range(int(rng.integers(0, 3))):  # 0-2 quieter accompanying sounds
            mix += _accompaniment(rng, seconds, tempo, key, scale) * 10 ** (rng.uniform(-20, -8) / 20)
        if drums:
            mix += _drums(rng, seconds, tempo) * 10 ** (rng.uniform(-14, -6) / 20)
        mix = _finish(rng, mix, rate)
        genre = GENRES[int(rng.integers(len(GENRES)))]
        folder = job.out / name / "train" / code
        folder.mkdir(parents=True, exist_ok=True)
        paths, n = [], int(CLIP_SECONDS * rate)
        for k in range(CLIPS_PER_RECORDING):
            path = folder / f"{name}__[{code}][{'dru' if drums else 'nod'}][{genre}]{job.index:05d}__{k + 1}.wav"
            sf.write(path, mix[k * n:(k + 1) * n], rate, subtype="PCM_16")
            paths.append(path)
        return paths
    seconds = float(rng.uniform(*TEST_SECONDS))
    count = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))
    available = _RENDERER.codes()
    picked = rng.choice(len(available), size=min(count, len(available)), replace=False)
    codes = [CODES.index(available[i]) for i in sorted(picked)]
    mix = sum(_instrument(rng, CODES[c], seconds, tempo, key, scale) * 10 ** (rng.uniform(-3, 3) / 20)
              for c in codes)
    if drums:
        mix = mix + _drums(rng, seconds, tempo) * 10 ** (rng.uniform(-12, -4) / 20)
    mix = _finish(rng, mix, rate)
    folder = job.out / name / "test"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{job.index:05d}.wav"
    sf.write(path, mix, rate, subtype="PCM_16")
    path.with_suffix(".txt").write_text("".join(f"{CODES[c]}\t\n" for c in codes))
    return [path]


def _instrument(rng, code, seconds, tempo, key, scale) -> np.ndarray:
    _, low, high, chords = INSTRUMENTS[code]
    presets = _RENDERER.presets(code)
    keys = {p: _RENDERER.playable(p, low, high) for p in presets}
    available = [p for p in presets if keys[p]]
    if not available:
        raise ValueError(f"{_RENDERER.bank_path} has none of the presets {presets} for {code!r} "
                         f"(General MIDI program, or (bank, program)) with samples in keys {low}-{high}")
    preset = available[int(rng.integers(len(available)))]
    notes = compose(rng, seconds, low, high, chords, tempo, key, scale, keys[preset])
    return _RENDERER.part(preset, notes, seconds, soft_darkening=rng.uniform(0, MAX_SOFT_DARKENING_CENTS))


def _accompaniment(rng, seconds, tempo, key, scale) -> np.ndarray:
    """Either an unlabelled GM sound or another IRMAS instrument, as real backing tracks have (only the
    second from a sample library, which has no General MIDI sounds)."""
    if rng.random() < 0.5 and isinstance(_RENDERER, Renderer):
        programs, low, high = ACCOMPANIMENT
        notes = compose(rng, seconds, low, high, bool(rng.random() < 0.5), tempo, key, scale)
        return _RENDERER.part(int(rng.choice(programs)), notes, seconds)
    codes = _RENDERER.codes()
    return _instrument(rng, codes[int(rng.integers(len(codes)))], seconds, tempo, key, scale)


def _drums(rng, seconds, tempo) -> np.ndarray:
    return _RENDERER.part(0, drum_pattern(rng, seconds, tempo), seconds, drums=True)


def render_dataset(banks: list[str], out: str | os.PathLike, train_per_class: int = 100, test_excerpts: int = 40,
                   seed: int = 0, workers: int | None = None, progress: bool = True,
                   sample_rate: int = OUT_RATE) -> dict:
    """Render both layouts for each bank under `out/<bank>/{train,test}` at `sample_rate` (stereo 16-bit);
    returns counts and seconds."""
    import time

    from tqdm import tqdm

    out = Path(out)
    for bank in banks:
        resolve_bank(bank)  # fail before starting processes
    recordings = -(-train_per_class // CLIPS_PER_RECORDING) * len(CODES)  # per bank, classes interleaved
    chunks = [[Job(b, kind, i, seed, out, sample_rate) for i in range(start, min(start + CHUNK, count))]
              for b in banks for kind, count in (("train", recordings), ("test", test_excerpts))
              for start in range(0, count, CHUNK)]
    start = time.perf_counter()
    files: list[Path] = []
    workers = workers or os.cpu_count() or 1
    # spawn, not fork: a fork of a process that already ran torch's thread pools can deadlock.
    # the workers keep what they free: a recording's arrays are allocated again without page faults
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=keep_freed_memory) as pool:
        for paths in tqdm(pool.map(render_chunk, chunks), total=len(chunks), desc="render",
                          unit="chunk", disable=not progress):
            files += paths
    elapsed = time.perf_counter() - start
    from .physical import PHYSICAL_VERSION, STK
    from .sampler import SAMPLER_VERSION, is_sample_library, library_sets

    for bank in banks:
        (out / bank_name(bank)).mkdir(parents=True, exist_ok=True)
        manifest = {"bank": bank_name(bank), "seed": seed, "train_per_class": train_per_class,
                    "test_excerpts": test_excerpts, "sample_rate": sample_rate, "renderer": RENDERER_VERSION}
        if is_sample_library(bank):
            manifest.update(sampler=SAMPLER_VERSION, sample_sets=library_sets(bank))
        if bank == STK:
            manifest.update(physical=PHYSICAL_VERSION)
        (out / bank_name(bank) / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    audio_seconds = sum(sf.info(str(p)).duration for p in files)
    stats = {"files": len(files), "audio_seconds": round(audio_seconds, 1), "wall_seconds": round(elapsed, 1),
             "x_realtime": round(audio_seconds / elapsed, 1)}
    if progress:
        print(f"rendered {stats['files']} files, {audio_seconds / 60:.1f} min of audio in {elapsed:.1f} s "
              f"({stats['x_realtime']}x real time) into {out}")
    return stats
