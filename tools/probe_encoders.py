"""Which embedding carries over to sources never heard? A linear probe on frozen embeddings.

Trains a softmax classifier (torch, full-batch L-BFGS) on embeddings of solo clips of the two General MIDI
banks, then scores it on solo clips of sources the embeddings and the probe never saw. Embeddings: musicnn
MTT and MSD (irmas.musicnn, penultimate layer) and a model's fusion input (its three towers; use one that
did not train on the test sources).

    .venv/bin/python tools/probe_encoders.py --per-class 30 --test-per-class 50 --towers path/to/model
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

TRAIN = ["data/synth/FluidR3_GM/train", "data/synth/MuseScore_General/train"]
TEST = {"real recorded notes": "data/synth/samples/train", "TimGM6mb": "data/bench_solo/TimGM6mb/train"}


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
def embed(name: str, waves: torch.Tensor, bundled: InstrumentClassifier) -> torch.Tensor:
    out = []
    for start in range(0, len(waves), 32):
        batch = as_float(waves[start:start + 32])
        if name == "bundled towers":
            bands = bundled.features(batch)
            out.append(torch.cat([t(s) for t, s in zip(bundled.towers, bands)], dim=1))
        elif name.endswith(" pooled"):  # max and mean over time of the front and mid end (1,506-d)
            model = ENCODERS[name.removesuffix(" pooled")]
            grabbed = []
            hook = model.encoder.pool_bn.register_forward_hook(lambda m, args, out: grabbed.append(args[0]))
            model.encode(batch)
            hook.remove()
            out.append(grabbed[0])
        else:
            out.append(ENCODERS[name].encode(batch))
    return torch.cat(out)


def probe(train_x, train_y, test_x, test_y) -> float:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    layer = torch.nn.Linear(train_x.shape[1], len(CODES))
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=200)

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(train_x), train_y) + 1e-3 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float((layer(test_x).argmax(1) == test_y).float().mean())


ENCODERS: dict[str, InstrumentClassifier] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=30, help="training clips per class and bank")
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--embeddings", default="bundled towers,MTT_musicnn,MSD_musicnn,MTT_musicnn pooled,"
                        "MSD_musicnn pooled", help="comma-separated")
    parser.add_argument("--towers", default=None, help="model whose towers to probe (default: the bundled one)")
    args = parser.parse_args()
    torch.manual_seed(0)
    bundled = load_model(args.towers).model
    for name in ("MTT_musicnn", "MSD_musicnn"):
        ENCODERS[name] = InstrumentClassifier(tower_channels=[1], encoder=name).eval()
    train = [ex for folder in TRAIN for ex in sample(folder, args.per_class)]
    train_w, train_t, _ = load_clips(train)
    tests = {}
    for label, folder in TEST.items():
        if Path(folder).is_dir():
            w, t, _ = load_clips(sample(folder, args.test_per_class))
            tests[label] = (w, t.argmax(1))
    print(f"| embedding | {' | '.join(tests)} |\n|---|{'---|' * len(tests)}")
    for name in args.embeddings.split(","):
        train_x = embed(name, train_w, bundled)
        scores = [probe(train_x, train_t.argmax(1), embed(name, w, bundled), y) for w, y in tests.values()]
        print(f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
