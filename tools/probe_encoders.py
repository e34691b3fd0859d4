"""Which embedding carries over to sources never heard? A linear probe on frozen embeddings.

For each training source held out in turn, a softmax classifier (torch, full-batch L-BFGS) learns from the
embeddings of solo clips of the other sources and is scored on the held-out source's clips; TimGM6mb and csound's
sf_GMbank, where rendered into data/bench_solo (`irmas data render --seed 1234`), are only ever scored.
Embeddings: any `encoder` of the classifier (irmas.musicnn: "MSD_musicnn/pooled", "MTT_vgg/pool3",
"MSD_musicnn/pooled+MTT_vgg/pool3", ...) and "bundled towers", a model's three tower embeddings (use one that did
not train on the held-out source).

    .venv/bin/python tools/probe_encoders.py --per-class 100 --embeddings "MSD_musicnn/pooled,MTT_vgg/pool3"
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from irmas.data.layouts import read_training
from irmas.hub import load_model
from irmas.labels import CODES
from irmas.model import InstrumentClassifier
from train.data import as_float, load_clips

SOURCES = {"FluidR3_GM": "data/synth/FluidR3_GM/train", "MuseScore_General": "data/synth/MuseScore_General/train",
           "real recorded notes": "data/synth/samples/train"}
SCORED_ONLY = {"TimGM6mb": "data/bench_solo/TimGM6mb/train", "sf_GMbank": "data/bench_solo/sf_GMbank/train"}


def sample(folder: str, per_class: int, seed: int = 0):
    examples = read_training(Path(folder))
    random.Random(seed).shuffle(examples)
    kept, count = [], {}
    for ex in examples:
        if count.get(ex.labels[0], 0) < per_class:
            kept.append(ex)
            count[ex.labels[0]] = count.get(ex.labels[0], 0) + 1
    return kept


@torch.inference_mode()
def embed(name: str, waves: torch.Tensor, towers: InstrumentClassifier | None) -> torch.Tensor:
    model = towers if name == "bundled towers" else InstrumentClassifier(tower_channels=[1], encoder=name)
    out = []
    for start in range(0, len(waves), 32):
        batch = as_float(waves[start:start + 32])
        if name == "bundled towers":
            out.append(torch.cat([t(s) for t, s in zip(model.towers, model.features(batch))], dim=1))
        else:
            out.append(model.encode(batch))
    return torch.cat(out)


def probe(train_x, train_y, test_x, test_y) -> float:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    torch.manual_seed(0)
    layer = torch.nn.Linear(train_x.shape[1], len(CODES))
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=300)

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(train_x), train_y) + 1e-3 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float((layer(test_x).argmax(1) == test_y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100, help="clips per class and source")
    parser.add_argument("--embeddings", default="MSD_musicnn/pooled,MTT_vgg/pool3,MSD_musicnn/pooled+MTT_vgg/pool3",
                        help="comma-separated encoders, or 'bundled towers'")
    parser.add_argument("--towers", default=None, help="model whose towers to probe (default: the bundled one)")
    parser.add_argument("--extra", action="append", default=[], metavar="SOURCE=FOLDER",
                        help="more training clips (a training-layout folder), left out with SOURCE when it is held out")
    parser.add_argument("--base", action="append", default=[], metavar="SOURCE=FOLDER",
                        help="as --extra, but in every row's training")
    args = parser.parse_args()
    extra = dict(e.split("=", 1)[::-1] for e in args.extra)  # folder -> the source it goes with
    base = dict(e.split("=", 1)[::-1] for e in args.base)
    towers = load_model(args.towers).model if "bundled towers" in args.embeddings else None
    clips = {}
    for label, folder in {**SOURCES, **SCORED_ONLY, **{f: f for f in {**base, **extra}}}.items():
        if Path(folder).is_dir():
            waves, targets, _ = load_clips(sample(folder, args.per_class))
            clips[label] = (waves, targets.argmax(1))
    held_out = [s for s in SOURCES if s in clips]
    scored = held_out + [s for s in SCORED_ONLY if s in clips]
    print(f"| embedding | {' | '.join(scored)} |\n|---|{'---|' * len(scored)}")
    for name in args.embeddings.split(","):
        x = {label: embed(name, waves, towers) for label, (waves, _) in clips.items()}
        for with_extra in ([False, True] if extra else [False]):
            scores = []
            for target in scored:
                train = [s for s in held_out if s != target] if target in SOURCES else held_out
                train += [f for f, source in base.items() if source in train] + \
                    [f for f, source in extra.items() if with_extra and source in train]
                scores.append(probe(torch.cat([x[s] for s in train]), torch.cat([clips[s][1] for s in train]),
                                    x[target], clips[target][1]))
            label = f"{name}{' + ' + ', '.join(extra) if with_extra else ''}"
            print(f"| {label} | " + " | ".join(f"{s:.3f}" for s in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
