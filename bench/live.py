"""How steady, how right and how quick is the Live tab's answer, for each way of reading the latest audio?

The Live tab answers every second about the audio heard so far (`irmas.predict.predict_latest`). This replays
rendered test excerpts as a microphone would deliver them, one second at a time, and asks each rule at every
second: how often its set of named instruments changes while the music does not (per minute), how right each
answer is (micro F1 of the instruments it names against the excerpt's labels, from 3 s in), and, on pairs of
excerpts with no instrument in common played one after the other, how many seconds after the change the answer
names the second excerpt's instruments and no longer the first's. Uses the rendered test excerpts on this machine
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
from irmas.predict import LATEST_HOLD, LATEST_HOP_SECONDS, LATEST_SECONDS, named, predict_latest

from .common import table

SETS = [("FluidR3_GM (trained on)", Path("data/synth/FluidR3_GM/test")),
        ("real recorded notes (trained on)", Path("data/synth/samples/test")),
        ("TimGM6mb (held out)", Path("data/bench/TimGM6mb/test"))]
# rule -> (seconds of the latest audio, hop between its 3 s windows, how far under the threshold a named
# instrument stays named); the first is what the app did before 2026-12-07
RULES = {"the last 3 s (one window)": (3.0, 1.5, 0.0), "the last 4 s, windows 1 s apart": (4.0, 1.0, 0.0),
         f"the last {LATEST_SECONDS:g} s, windows {LATEST_HOP_SECONDS:g} s apart":
             (LATEST_SECONDS, LATEST_HOP_SECONDS, 0.0),
         "the last 7 s, windows 1 s apart": (7.0, 1.0, 0.0),
         **{f"the last {LATEST_SECONDS:g} s, held {hold:.2f} under the threshold"
            + (" (the app)" if hold == LATEST_HOLD else ""): (LATEST_SECONDS, LATEST_HOP_SECONDS, hold)
            for hold in sorted({0.03, LATEST_HOLD, 0.08, 0.12})}}
FIRST_SCORED_SECONDS = 3  # answers before a full window are not scored for correctness


def replay(model, audio: np.ndarray, seconds: float, hop: float) -> list[np.ndarray]:
    """The live view's probabilities after each whole second of `audio`."""
    sr = model.sample_rate
    return [predict_latest(model, audio[:t * sr], seconds=seconds, hop_seconds=hop).probabilities
            for t in range(1, len(audio) // sr + 1)]


def answers(probabilities: list[np.ndarray], labels: list[str], threshold: float,
            hold: float) -> list[tuple[frozenset, np.ndarray]]:
    """(named instruments, probabilities) after each second, each answer holding what the one before named."""
    out, before = [], ()
    for p in probabilities:
        before = tuple(named(labels, p, threshold, before, hold))
        out.append((frozenset(before), p))
    return out


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
        replays, spent = {}, {}  # (seconds, hop) -> each excerpt's and each pair's replay; seconds it took
        for rule, (seconds, hop, hold) in RULES.items():
            if (seconds, hop) not in replays:
                start = time.perf_counter()
                replays[seconds, hop] = ([replay(model, audio, seconds, hop) for audio in audios], [
                    replay(model, np.concatenate([audios[a][:len(audios[a]) // sr * sr], audios[b]]), seconds, hop)
                    for a, b in switches])
                spent[seconds, hop] = time.perf_counter() - start
            solo, paired = replays[seconds, hop]
            flicker, hits, targets, follow = [], [], [], []
            for ex, probabilities in zip(examples, solo):
                said = answers(probabilities, labels, model.threshold, hold)
                flicker.append(changes_per_minute(said))
                for heard, _ in said[FIRST_SCORED_SECONDS - 1:]:
                    hits.append([code in heard for code in labels])
                    targets.append([code in ex.labels for code in labels])
            for (a, b), probabilities in zip(switches, paired):
                said = answers(probabilities, labels, model.threshold, hold)
                follow.append(seconds_to_follow(said, len(audios[a]) // sr, set(examples[a].labels),
                                                set(examples[b].labels)))
            ticks = sum(len(r) for r in solo) + sum(len(r) for r in paired)
            f1 = multi_label_metrics(np.array(hits, dtype=np.float32), np.array(targets, dtype=np.int64), labels,
                                     0.5)["micro_f1"]
            followed = np.array(follow, dtype=np.float64)
            rows.append([name, rule, f"{np.mean(flicker):.1f}", f"{f1:.3f}",
                         f"{np.nanmedian(followed):.0f} / {np.nanpercentile(followed, 90):.0f}"
                         if np.isfinite(followed).any() else "-",
                         f"{np.isnan(followed).sum()} of {len(followed)}",
                         f"{1000 * spent[seconds, hop] / ticks:.0f}"])
    return table(f"The Live tab's answer every second, replayed (threshold {model.threshold})", [
        "excerpts", "answer about", "changes per minute", "micro F1 of each answer",
        "seconds to follow a change (median / 90th pct.)", "never followed", "ms per answer"], rows)
