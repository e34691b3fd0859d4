"""How steady, how right and how quick is the Live tab's answer, for each way of reading the latest audio?

The Live tab answers every second about the audio heard so far (`irmas.predict.predict_latest`). This replays
rendered test excerpts as a microphone would deliver them, one second at a time, and asks each rule at every
second: how often its set of named instruments changes while the music does not (per minute), how right each
answer is (micro F1 against the excerpt's labels, from 3 s in), and, on pairs of excerpts with no instrument in
common played one after the other, how many seconds after the change the answer names the second excerpt's
instruments and no longer the first's. Uses the rendered test excerpts on this machine
(`train/reproduce_starter.sh`, `bench accuracy`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from irmas.audio import load_audio
from irmas.data.layouts import read_layout
from irmas.evaluate import multi_label_metrics
from irmas.hub import load_model
from irmas.predict import LATEST_HOP_SECONDS, LATEST_SECONDS, predict_latest

from .common import table

SETS = [("FluidR3_GM (trained on)", Path("data/synth/FluidR3_GM/test")),
        ("real recorded notes (trained on)", Path("data/synth/samples/test")),
        ("TimGM6mb (held out)", Path("data/bench/TimGM6mb/test"))]
# rule -> (seconds of the latest audio, hop between its 3 s windows); the first is what the app did before
RULES = {"the last 3 s (one window)": (3.0, 1.5), "the last 4 s, windows 1 s apart": (4.0, 1.0),
         f"the last {LATEST_SECONDS:g} s, windows {LATEST_HOP_SECONDS:g} s apart (the app)":
             (LATEST_SECONDS, LATEST_HOP_SECONDS),
         "the last 6 s, windows 1.5 s apart": (6.0, 1.5), "the last 7 s, windows 1 s apart": (7.0, 1.0)}
FIRST_SCORED_SECONDS = 3  # answers before a full window are not scored for correctness


def replay(model, audio: np.ndarray, seconds: float, hop: float) -> list[tuple[frozenset, np.ndarray]]:
    """The live answer (named instruments, probabilities) after each whole second of `audio`."""
    sr = model.sample_rate
    answers = []
    for t in range(1, len(audio) // sr + 1):
        prediction = predict_latest(model, audio[:t * sr], seconds=seconds, hop_seconds=hop)
        answers.append((frozenset(prediction.detected), prediction.probabilities))
    return answers


def changes_per_minute(answers: list[tuple[frozenset, np.ndarray]]) -> float:
    named = [a for a, _ in answers[FIRST_SCORED_SECONDS - 1:]]
    return 60 * sum(a != b for a, b in zip(named, named[1:])) / max(len(named) - 1, 1)


def seconds_to_follow(answers: list[tuple[frozenset, np.ndarray]], switch: int, first: set, second: set) -> float:
    """Seconds after the switch until the answer names none of `first` and some of `second`, for good."""
    settled = len(answers)
    for t in range(len(answers) - 1, switch - 1, -1):
        named = answers[t][0]
        if named & first or not named & second:
            break
        settled = t
    return settled + 1 - switch if settled < len(answers) else float("nan")


def run(sets: list[tuple[str, Path]] = SETS, per_set: int = 24, pairs: int = 12) -> str:
    model = load_model(None).model
    labels = list(model.labels)
    sr = model.sample_rate
    rows = []
    for name, folder in sets:
        if not folder.is_dir():
            continue
        examples = read_layout(folder)[1][:per_set]
        audios = [load_audio(ex.path, target_rate=sr) for ex in examples]
        ordered = np.random.default_rng(0).permutation(
            [(a, b) for a in range(len(examples)) for b in range(len(examples)) if a != b])
        # (excerpt A, excerpt B) played one after the other: no instrument in common
        switches = [(a, b) for a, b in ordered if not set(examples[a].labels) & set(examples[b].labels)][:pairs]
        for rule, (seconds, hop) in RULES.items():
            flicker, probabilities, targets, follow, ticks, spent = [], [], [], [], 0, 0.0
            for ex, audio in zip(examples, audios):
                start = time.perf_counter()
                answers = replay(model, audio, seconds, hop)
                spent += time.perf_counter() - start
                ticks += len(answers)
                flicker.append(changes_per_minute(answers))
                for _, p in answers[FIRST_SCORED_SECONDS - 1:]:
                    probabilities.append(p)
                    targets.append([code in ex.labels for code in labels])
            for a, b in switches:
                switch = len(audios[a]) // sr
                answers = replay(model, np.concatenate([audios[a][:switch * sr], audios[b]]), seconds, hop)
                follow.append(seconds_to_follow(answers, switch, set(examples[a].labels), set(examples[b].labels)))
            f1 = multi_label_metrics(np.stack(probabilities), np.array(targets, dtype=np.int64), labels,
                                     model.threshold)["micro_f1"]
            followed = np.array(follow, dtype=np.float64)
            rows.append([name, rule, f"{np.mean(flicker):.1f}", f"{f1:.3f}",
                         f"{np.nanmedian(followed):.0f} / {np.nanpercentile(followed, 90):.0f}"
                         if np.isfinite(followed).any() else "-",
                         f"{np.isnan(followed).sum()} of {len(followed)}", f"{1000 * spent / ticks:.0f}"])
    return table(f"The Live tab's answer every second, replayed (threshold {model.threshold})", [
        "excerpts", "answer about", "changes per minute", "micro F1 of each answer",
        "seconds to follow a change (median / 90th pct.)", "never followed", "ms per answer"], rows)
