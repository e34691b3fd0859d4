"""How often does the bundled model name one of the 11 for an instrument it never heard at all?

A user who plays an oboe or a banjo should hear "none of the 11", not a confident wrong name. The model trains on
eight instruments outside the 11 as sound of no instrument (real recorded notes, `irmas data negatives`) and on
General MIDI bass, strings and pads as unlabelled accompaniment; the General MIDI instruments below are none of
those. Each plays the renderer's phrases alone (seeded; a room on each), 5 s, in every bank installed here: the
two banks the model trained on (its classes, not these instruments) and the evaluation-only banks.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from irmas.data.render import MAJOR, MINOR, Renderer, compose, resolve_bank, room
from irmas.hub import load_model
from irmas.labels import NAMES
from irmas.predict import predict_waveform

from .common import table

# General MIDI program (0-based) -> (name, lowest and highest MIDI note, plays chords)
UNHEARD = {11: ("vibraphone", 53, 89, True), 12: ("marimba", 48, 96, True), 21: ("accordion", 53, 89, True),
           22: ("harmonica", 60, 84, False), 68: ("oboe", 58, 91, False), 69: ("english horn", 52, 81, False),
           104: ("sitar", 48, 77, False), 105: ("banjo", 48, 84, True), 107: ("koto", 55, 84, False),
           108: ("kalimba", 60, 84, False), 109: ("bagpipe", 60, 77, False), 114: ("steel drums", 52, 76, False)}
BANKS = ("FluidR3_GM", "MuseScore_General", "/usr/share/sounds/sf2/TimGM6mb.sf2",
         "/usr/share/sounds/sf2/sf_GMbank.sf2")
SECONDS = 5.0
SEED = 4321


def clip(renderer: Renderer, program: int, index: int) -> np.ndarray:
    """One mono phrase of `program` alone in the loaded bank, in a room, seeded by (program, index)."""
    _, low, high, chords = UNHEARD[program]
    rng = np.random.default_rng([SEED, program, index])
    keys = renderer.playable(program, low, high)
    if not keys:
        raise ValueError(f"{renderer.bank_path} has no samples for General MIDI program {program} in {low}-{high}")
    scale = MAJOR if rng.random() < 0.6 else MINOR
    notes = compose(rng, SECONDS, min(keys), max(keys), chords and bool(rng.random() < 0.5), rng.uniform(60, 160),
                    int(rng.integers(12)), scale, keys)
    audio = renderer.part(program, notes, SECONDS)
    return room(rng, audio, renderer.sample_rate).mean(axis=1).astype(np.float32)


def run(clips: int = 20, banks: tuple[str, ...] = BANKS, programs: tuple[int, ...] = tuple(UNHEARD)) -> str:
    model = load_model(None).model
    renderer = Renderer(model.sample_rate)
    rows, named_all, total = [], 0, 0
    for bank in banks:
        try:
            renderer.begin(bank)
        except FileNotFoundError:
            continue  # not installed here
        for program in programs:
            named, first = 0, collections.Counter()
            for index in range(clips):
                detected = predict_waveform(model, clip(renderer, program, index)).detected
                named += bool(detected)
                first.update(detected[:1])
                renderer.begin(bank)  # a fresh synth per clip: no clip depends on the one before
            names = ", ".join(f"{NAMES.get(c, c).lower()} {n}" for c, n in first.most_common(2))
            rows.append([Path(resolve_bank(bank)).stem, UNHEARD[program][0], f"{named} / {clips}", names or "-"])
            named_all, total = named_all + named, total + clips
    share = f"{named_all / total:.2f}" if total else "-"
    return table(f"Instruments outside the 11 that the model never heard: clips on which it names one of the 11 "
                 f"({share} of {total}; threshold {model.threshold})",
                 ["bank", "instrument", "clips named", "named most often"], rows)
