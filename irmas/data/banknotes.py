"""A sound bank as a sparse sample library: a few of its notes, recorded, for irmas.data.sampler to stretch.

Small General MIDI banks (and real sample sets such as tonejs-instrument-*) record an instrument at a few keys
and stretch each recording over its neighbours, which shifts its formants with the pitch; large banks such as
FluidR3_GM sample most keys. Recording a large bank's presets every `step` keys and playing the pieces with the
sampler gives the same instruments with that stretch, so the model hears a class through both kinds of bank.
The library has the layout `python -m irmas data samples` writes (one folder per preset with notes named `C4v1.wav`
and a marker), so `irmas data render --bank <library>` plays it; the marker names the class it plays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from ..labels import CODES
from .render import INSTRUMENTS, Renderer, bank_name, resolve_bank
from .sampler import MARKER, MAX_SHIFT

NOTE_NAMES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
VELOCITIES = (55, 110)  # one recording per velocity layer (v1 soft, v2 loud)
NOTE_SECONDS = 4.0  # each recording: the key held this long (the sampler cuts it to the note's length)
BANKNOTES_VERSION = "1"


def note_name(key: int, layer: int) -> str:
    """MIDI key 61, layer 2 -> `Cs4v2` (irmas.data.samples.parse_note reads it back)."""
    return f"{NOTE_NAMES[key % 12]}{key // 12 - 1}v{layer}"


def sample_bank(bank: str, out: str | Path, step: int = 2 * MAX_SHIFT, seed: int = 0,
                sample_rate: int = 22050, codes: tuple[str, ...] = CODES, max_shift: int = MAX_SHIFT) -> list[Path]:
    """Record every preset of `bank` that plays one of the IRMAS classes `codes` at every `step`-th playable key (the
    first within `max_shift` of the lowest, drawn per preset from `seed`; the highest too where the steps miss it) into
    `out/<preset>/`; returns the preset folders. The sampler stretches a note of the library by up to `max_shift`
    keys (the marker says so), so a `step` above 2 * max_shift + 1 would leave keys between recordings unplayable."""
    if max_shift < 1:
        raise ValueError("max_shift must be at least 1 key")
    if not 1 <= step <= 2 * max_shift + 1:
        raise ValueError(f"step must be 1-{2 * max_shift + 1} keys (the sampler stretches a note {max_shift} at most)")
    renderer = Renderer(sample_rate)
    renderer.begin(str(resolve_bank(bank)))
    name, folders = bank_name(bank), []
    for code in codes:
        presets, low, high, _ = INSTRUMENTS[code]
        for preset in presets:
            keys = sorted(renderer.playable(preset, low, high))
            if not keys:
                continue  # the bank lacks this preset
            rng = np.random.default_rng([seed, CODES.index(code), *np.atleast_1d(preset)])
            recorded = keys[int(rng.integers(min(step, max_shift + 1, len(keys))))::step]
            if keys[-1] - recorded[-1] > max_shift:
                recorded.append(keys[-1])  # the top of the range stays playable
            label = f"{name}-{'-'.join(map(str, np.atleast_1d(preset)))}"
            folder = Path(out) / label
            folder.mkdir(parents=True, exist_ok=True)
            for key in recorded:
                for layer, velocity in enumerate(VELOCITIES, start=1):
                    renderer.begin(str(resolve_bank(bank)))  # a fresh synth: no tail of the last note
                    audio = renderer.part(preset, [(0.0, NOTE_SECONDS, key, velocity)], NOTE_SECONDS + 0.1)
                    sf.write(folder / f"{note_name(key, layer)}.wav", audio, sample_rate, subtype="PCM_16")
            (folder / MARKER).write_text(json.dumps({
                "package": label, "version": BANKNOTES_VERSION, "label": code, "step": step, "max_shift": max_shift,
                "seed": seed,
                "credit": f"{name}, preset {preset}, recorded every {step} keys by irmas.data.banknotes"}) + "\n")
            folders.append(folder)
    return folders
