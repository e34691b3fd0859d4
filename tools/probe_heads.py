"""Screen a change to the fusion head, or to which clips it learns from, by leave-one-source-out in a minute a fold.

The encoder branch is fixed and the towers carry little, so a fold's held-out solo accuracy is mostly the fusion
head's on the encoder's embeddings. This trains that head alone (the towers' part of its input held at zero) on
exactly the clips and cached embeddings `python -m train loso` trains the fold on (train.data.IrmasDataModule with
the plan's sources), with the recipe's optimiser, epochs, label smoothing and learning-rate decay, and scores the
held-out source's solo clips, and its test excerpts as `irmas.predict` reads a recording (3 s windows, the mean
over the strongest 20 s) with the threshold calibrated on the other sources' excerpts. TimGM6mb and sf_GMbank solo
clips (data/bench_solo), where rendered, are scored only. Not in it: the towers and what training does to
waveforms. Confirm what it finds with `train loso`.

    .venv/bin/python tools/probe_heads.py train/configs/loso.yaml --seed 0 --head-seeds 2 \
        [--fusion-dims 768,512 --fusion-dropout 0.4,0.3 --epochs 4 --drop-train synth_bn ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from irmas.audio import load_audio
from irmas.data.layouts import read_testing
from irmas.evaluate import multi_label_metrics
from irmas.model import InstrumentClassifier
from irmas.predict import (
    HOP_SECONDS,
    STRETCH_SECONDS,
    WINDOW_SECONDS,
    frame_windows,
    level_windows,
    normalize,
    strongest_stretch_mean,
    window_starts,
)
from train.calibrate import THRESHOLDS
from train.data import IrmasDataModule
from train.loso import fold_data
from train.system import phase2_decay

SCORED_ONLY = {"TimGM6mb": "data/bench_solo/TimGM6mb/train", "sf_GMbank": "data/bench_solo/sf_GMbank/train"}


def embeddings(data_keys: dict, seed: int) -> dict:
    """A fold's training embeddings, targets and sources (IrmasDataModule.train_sources) and its validation set's,
    as `train fit` builds them: every storage-time change of the clips included, embeddings from the cache."""
    module = IrmasDataModule(**{**data_keys, "seed": seed})
    module.setup("fit")
    (_, y, encoded), (_, val_y, val_encoded) = module.train_set.tensors[:3], module.val_set.tensors[:3]
    return {"encoded": encoded, "targets": y, "sources": module.train_sources,
            "train_dirs": list(data_keys["train_dirs"]), "val_encoded": val_encoded, "val_targets": val_y}


def cached_embeddings(path: Path, data_keys: dict, seed: int) -> dict:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(embeddings(data_keys, seed), path)
    return torch.load(path, weights_only=True)


@torch.inference_mode()
def excerpt_windows(folder: str, encoder: str) -> dict:
    """The encoder's embedding of every window `irmas.predict` cuts from each test excerpt of `folder`, and the
    excerpts' labels: (windows, dim) embeddings, the window count of each excerpt, (excerpts, classes) targets."""
    model = InstrumentClassifier(tower_channels=[1], encoder=encoder)
    sr = model.sample_rate
    window, hop = int(WINDOW_SECONDS * sr), int(HOP_SECONDS * sr)
    parts, counts, targets = [], [], []
    for ex in read_testing(folder):
        frames, _ = frame_windows(normalize(load_audio(ex.path, target_rate=sr)), window, hop)
        parts.append(model.encode(torch.from_numpy(level_windows(frames))))
        counts.append(len(frames))
        targets.append([float(c in ex.labels) for c in model.labels])
    return {"encoded": torch.cat(parts), "counts": torch.tensor(counts), "targets": torch.tensor(targets)}


def excerpt_probabilities(model: InstrumentClassifier, excerpts: dict) -> np.ndarray:
    """Each excerpt's probabilities as `irmas.predict` forms them from its windows' (the towers' input at zero)."""
    with torch.inference_mode():
        encoded = excerpts["encoded"]
        towers = torch.zeros(len(encoded), model.fusion[0].in_features - encoded.shape[1])
        timeline = torch.sigmoid(model.fuse(towers, encoded)).numpy()
    sr = model.sample_rate
    per_stretch = len(window_starts(int(STRETCH_SECONDS * sr), int(WINDOW_SECONDS * sr), int(HOP_SECONDS * sr)))
    ends = np.cumsum(excerpts["counts"].numpy())
    return np.stack([strongest_stretch_mean(timeline[end - n:end], per_stretch)
                     for end, n in zip(ends, excerpts["counts"].tolist())]).astype(np.float32)


def excerpt_micro_f1(model: InstrumentClassifier, held: dict, others: list[dict]) -> float:
    """Micro F1 on the held-out excerpts at the threshold best on the other sources' (as train loso calibrates)."""
    def f1(excerpts: list[dict], threshold: float) -> float:
        probs = np.concatenate([excerpt_probabilities(model, e) for e in excerpts])
        targets = np.concatenate([e["targets"].numpy() for e in excerpts]).astype(np.int64)
        return multi_label_metrics(probs, targets, model.labels, threshold)["micro_f1"]

    scores = [f1(others, float(t)) for t in THRESHOLDS]
    return f1([held], float(THRESHOLDS[int(np.argmax(scores))]))


def train_head(fold: dict, recipe: dict, head_seed: int, drop_train: list[str]) -> InstrumentClassifier:
    """The recipe's classifier, its fusion and output layer trained on the fold's embeddings as the recipe trains
    them (Adam at head_lr with weight decay, phase-2 decay per epoch, label smoothing, batches of the recipe's
    size times its DDP processes)."""
    model_keys, trainer = recipe["model"], recipe["trainer"]
    torch.manual_seed(head_seed)
    model = InstrumentClassifier(tower_channels=[1], encoder=model_keys["encoder"],
                                 fusion_dims=model_keys.get("fusion_dims", [768, 512]),
                                 fusion_dropout=model_keys.get("fusion_dropout", [0.4, 0.3]))
    keep = torch.tensor([s < 0 or not any(part in fold["train_dirs"][s] for part in drop_train)
                         for s in fold["sources"].tolist()])
    x, y = fold["encoded"][keep], fold["targets"][keep]
    smoothing = model_keys.get("label_smoothing", 0.0)
    y = y * (1 - smoothing) + smoothing / 2
    towers = torch.zeros(1, model.fusion[0].in_features - x.shape[1])
    head = [*model.fusion.parameters(), *model.head.parameters()]
    head_lr, finetune_lr = model_keys.get("head_lr", 3e-3), model_keys.get("finetune_lr", 2e-4)
    unfreeze, epochs = model_keys.get("unfreeze_epoch", 4), trainer.get("max_epochs", 4)
    optimiser = torch.optim.Adam(head, lr=head_lr, weight_decay=model_keys.get("weight_decay", 2e-4))
    devices = trainer.get("devices", 1)
    batch = recipe["data"].get("batch_size", 32) * (devices if isinstance(devices, int) else 1)
    model.train()
    for epoch in range(epochs):
        for group in optimiser.param_groups:  # as InstrumentSystem.configure_optimizers sets the head's rate
            last = max(unfreeze + 1, epochs)
            group["lr"] = head_lr if epoch < unfreeze else finetune_lr * phase2_decay(epoch, unfreeze, last)
        order = torch.randperm(len(y))
        for start in range(0, len(y) - batch + 1, batch):
            index = order[start:start + batch]
            logits = model.fuse(towers.expand(len(index), -1), x[index])
            loss = F.binary_cross_entropy_with_logits(logits, y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


@torch.inference_mode()
def accuracy(model: InstrumentClassifier, encoded: torch.Tensor, targets: torch.Tensor) -> float:
    towers = torch.zeros(len(encoded), model.fusion[0].in_features - encoded.shape[1])
    return float((model.fuse(towers, encoded).argmax(1) == targets.argmax(1)).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path, help="a leave-one-source-out plan (train/configs/loso.yaml)")
    parser.add_argument("--seed", type=int, default=0, help="the data seed (the folds' clips, as train loso)")
    parser.add_argument("--head-seeds", type=int, default=2, help="heads trained per fold (initialisation, order)")
    parser.add_argument("--fusion-dims", default=None, help="override: widths, comma-separated")
    parser.add_argument("--fusion-dropout", default=None, help="override: dropout per layer, comma-separated")
    parser.add_argument("--epochs", type=int, default=None, help="override: passes over the clips")
    parser.add_argument("--drop-train", action="append", default=[],
                        help="leave out training folders whose path holds this (e.g. synth_bn)")
    parser.add_argument("--out", type=Path, default=Path("runs/probe_heads"), help="where folds' embeddings are kept")
    args = parser.parse_args()
    torch.set_num_threads(2)
    plan = yaml.safe_load(args.plan.read_text())
    recipe = yaml.safe_load(Path(plan["recipe"]).read_text())
    if args.fusion_dims:
        recipe["model"]["fusion_dims"] = [int(v) for v in args.fusion_dims.split(",")]
    if args.fusion_dropout:
        recipe["model"]["fusion_dropout"] = [float(v) for v in args.fusion_dropout.split(",")]
    if args.epochs:
        recipe["trainer"]["max_epochs"] = args.epochs
    data = {**recipe["data"], "encoder": recipe["model"]["encoder"],
            "encoder_noise_db": recipe["model"].get("encoder_noise_db")}
    scored = {}
    for name, folder in SCORED_ONLY.items():
        if Path(folder).is_dir():
            keys = {**data, "train_dirs": [folder], "val_dirs": [folder], "mixture_dirs": None, "negative_dirs": None,
                    "source_mixtures": 0, "quantize_share": 0.0, "noise_share": 0.0, "tilt_share": 0.0}
            scored[name] = cached_embeddings(args.out / f"{name}.pt", keys, 0)
    excerpts = {}
    for name, source in plan["sources"].items():
        path = args.out / f"excerpts-{name}.pt"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(excerpt_windows(source["test"], data["encoder"]), path)
        excerpts[name] = torch.load(path, weights_only=True)
    rows = []
    for held in plan["sources"]:
        fold = cached_embeddings(args.out / f"{held}-seed{args.seed}.pt", {**data, **fold_data(plan, held)}, args.seed)
        for head_seed in range(args.head_seeds):
            model = train_head(fold, recipe, head_seed, args.drop_train)
            row = {"held out": held, "head seed": head_seed,
                   "held-out solo accuracy": accuracy(model, fold["val_encoded"], fold["val_targets"]),
                   "held-out excerpts micro F1": excerpt_micro_f1(
                       model, excerpts[held], [excerpts[n] for n in plan["sources"] if n != held])}
            row.update({f"{name} (scored only)": accuracy(model, s["val_encoded"], s["val_targets"])
                        for name, s in scored.items()})
            rows.append(row)
            print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    folds = list(plan["sources"])
    print(f"| held out: solo accuracy / excerpts micro F1 | {' | '.join(folds)} | mean | "
          + " | ".join(f"{n} solo (scored only)" for n in scored) + " |")
    cells = []
    for key in ("held-out solo accuracy", "held-out excerpts micro F1"):
        means = [np.mean([r[key] for r in rows if r["held out"] == f]) for f in folds]
        cells.append([*means, np.mean(means)])
    print("| | " + " | ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(*cells)) + " | "
          + " | ".join(f"{np.mean([r[f'{n} (scored only)'] for r in rows]):.3f}" for n in scored) + " |")


if __name__ == "__main__":
    main()
