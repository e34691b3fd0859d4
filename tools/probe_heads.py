"""Screen a change to the fusion head, or to which clips it learns from, by leave-one-source-out in a minute a fold.

The encoder branch is fixed and the towers carry little, so a fold's held-out solo accuracy is mostly the fusion
head's on the encoder's embeddings. This trains that head alone (the towers' part of its input held at zero) on
exactly the clips and cached embeddings `python -m train loso` trains the fold on (train.data.IrmasDataModule with
the plan's sources), with the recipe's optimiser, epochs, label smoothing and learning-rate decay, and scores the
held-out source's solo clips, and its test excerpts as `irmas.predict` reads a recording (3 s windows, the mean
over the strongest 20 s) with the threshold calibrated on the other sources' excerpts. TimGM6mb and sf_GMbank solo
clips (data/bench_solo), where rendered, are scored only. Not in it: the towers and what training does to
waveforms. Confirm what it finds with `train loso`.

`--tune-midend LR` also trains musicnn's two upper mid-end layers with the head, at LR under the same decay: each
clip's first mid-end layer output is kept (64 x 187 numbers, float16, beside the fold's embeddings) and the
mid-end's part of the `pooled` embedding is computed again from it at every step; the rest stays cached.

    .venv/bin/python tools/probe_heads.py train/configs/loso.yaml --seed 0 --head-seeds 2 \
        [--fusion-dims 768,512 --fusion-dropout 0.4,0.3 --epochs 4 --drop-train synth_bn --tune-midend 1e-4 ...]
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
from irmas.musicnn import MIDEND, N_FRAMES, pooled_and_first_midend
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
from train.data import IrmasDataModule, as_float
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
def first_midend_outputs(model: InstrumentClassifier, waves: torch.Tensor) -> torch.Tensor:
    """(clips, 64, 187) float16: musicnn's first mid-end layer on each 3 s clip (or window), as the branch hears it."""
    tunable = model.encoder.tunable_midends()
    if not tunable:
        raise ValueError(f"--tune-midend needs a musicnn's pooled layer in the encoder, not {model.encoder.parts}")
    if model.encoder.noise_db is not None:
        raise ValueError("--tune-midend: the encoder's noise floor is not supported")
    net = tunable[0][0]
    kept = [torch.zeros(0, MIDEND, N_FRAMES, dtype=torch.float16)]
    for start in range(0, len(waves), 32):
        batch = waves[start:start + 32]
        batch = as_float(batch) if batch.dtype == torch.int16 else batch.float()
        kept.append(pooled_and_first_midend(net, model.encoder.front_end(batch)[:, :N_FRAMES])[1].half())
    return torch.cat(kept)


def with_midend(model: InstrumentClassifier, encoded: torch.Tensor, first: torch.Tensor | None) -> torch.Tensor:
    """`encoded` with the mid-end's part computed again by `model`'s own (tuned) musicnn from `first`, its first
    mid-end layer's outputs; `encoded` itself without them."""
    if first is None:
        return encoded
    with torch.no_grad():
        return torch.cat([model.encoder.with_midend(encoded[start:start + 512], first[start:start + 512, None])
                          for start in range(0, len(encoded), 512)])


def _excerpts(folder: str, model: InstrumentClassifier):
    """Each test excerpt of `folder` and the windows `irmas.predict` cuts from it."""
    sr = model.sample_rate
    for ex in read_testing(folder):
        frames, _ = frame_windows(normalize(load_audio(ex.path, target_rate=sr)), int(WINDOW_SECONDS * sr),
                                  int(HOP_SECONDS * sr))
        yield ex, torch.from_numpy(level_windows(frames))


@torch.inference_mode()
def excerpt_windows(folder: str, encoder: str) -> dict:
    """The encoder's embedding of every window `irmas.predict` cuts from each test excerpt of `folder`, and the
    excerpts' labels: (windows, dim) embeddings, the window count of each excerpt, (excerpts, classes) targets."""
    model = InstrumentClassifier(tower_channels=[1], encoder=encoder)
    parts, counts, targets = [], [], []
    for ex, windows in _excerpts(folder, model):
        parts.append(model.encode(windows))
        counts.append(len(windows))
        targets.append([float(c in ex.labels) for c in model.labels])
    return {"encoded": torch.cat(parts), "counts": torch.tensor(counts), "targets": torch.tensor(targets)}


def midend_inputs(path: Path, encoder: str, fold_keys: dict | None = None, seed: int = 0,
                  excerpts: str | None = None) -> dict:
    """`first_midend_outputs` of a fold's training and validation clips (as `embeddings` builds them), or of a
    folder's excerpt windows (in `excerpt_windows`' order); kept at `path`."""
    if not path.is_file():
        model = InstrumentClassifier(tower_channels=[1], encoder=encoder)
        if excerpts:
            kept = {"windows": torch.cat([first_midend_outputs(model, w) for _, w in _excerpts(excerpts, model)])}
        else:
            module = IrmasDataModule(**{**fold_keys, "seed": seed})
            module.setup("fit")
            kept = {"train": first_midend_outputs(model, module.train_set.tensors[0]),
                    "val": first_midend_outputs(model, module.val_set.tensors[0])}
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(kept, path)
    return torch.load(path, weights_only=True)


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


def train_head(fold: dict, recipe: dict, head_seed: int, drop_train: list[str], midend: torch.Tensor | None = None,
               midend_lr: float = 0.0) -> InstrumentClassifier:
    """The recipe's classifier, its fusion and output layer trained on the fold's embeddings as the recipe trains
    them (Adam at head_lr with weight decay, phase-2 decay per epoch, label smoothing, batches of the recipe's
    size times its DDP processes). With `midend` (the fold's `first_midend_outputs`) and `midend_lr`, the model's
    own musicnn upper mid-end layers train too, in phase 2, at that rate under the same decay."""
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
    groups = [{"params": head, "base": None}]
    tuned = midend is not None and midend_lr > 0
    if tuned:
        midend, layers = midend[keep], model.encoder.upper_midend_parameters()
        for p in layers:
            p.requires_grad_(True)
        groups.append({"params": layers, "base": midend_lr})
    optimiser = torch.optim.Adam(groups, lr=head_lr, weight_decay=model_keys.get("weight_decay", 2e-4))
    devices = trainer.get("devices", 1)
    batch = recipe["data"].get("batch_size", 32) * (devices if isinstance(devices, int) else 1)
    model.train()
    model.encoder.train(False)  # its BatchNorms keep their statistics
    for epoch in range(epochs):
        for group in optimiser.param_groups:  # as InstrumentSystem.configure_optimizers sets the head's rate
            decay = phase2_decay(epoch, unfreeze, max(unfreeze + 1, epochs))
            if group["base"] is None:
                group["lr"] = head_lr if epoch < unfreeze else finetune_lr * decay
            else:  # the mid-end is held in phase 1
                group["lr"] = 0.0 if epoch < unfreeze else group["base"] * decay
        order = torch.randperm(len(y))
        for start in range(0, len(y) - batch + 1, batch):
            index = order[start:start + batch]
            inputs = x[index]
            if tuned:
                inputs = model.encoder.with_midend(inputs, midend[index][:, None])
            logits = model.fuse(towers.expand(len(index), -1), inputs)
            loss = F.binary_cross_entropy_with_logits(logits, y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    if tuned:
        for p in layers:
            p.requires_grad_(False)
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
    parser.add_argument("--only", action="append", default=[], help="hold out only this source (repeatable)")
    parser.add_argument("--tune-midend", type=float, default=0.0, metavar="LR",
                        help="also train musicnn's upper mid-end layers at this rate (phase 2)")
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
    tune = args.tune_midend > 0

    def midend(path: Path, **how) -> dict:  # the first mid-end layer's outputs, where the mid-end is tuned
        return midend_inputs(path, data["encoder"], **how) if tune else {}

    scored = {}
    for name, folder in SCORED_ONLY.items():
        if Path(folder).is_dir():
            keys = {**data, "train_dirs": [folder], "val_dirs": [folder], "mixture_dirs": None, "negative_dirs": None,
                    "source_mixtures": 0, "quantize_share": 0.0, "noise_share": 0.0, "tilt_share": 0.0}
            scored[name] = {**cached_embeddings(args.out / f"{name}.pt", keys, 0),
                            **midend(args.out / f"{name}-midend.pt", fold_keys=keys)}
    excerpts = {}
    for name, source in plan["sources"].items():
        path = args.out / f"excerpts-{name}.pt"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(excerpt_windows(source["test"], data["encoder"]), path)
        excerpts[name] = {**torch.load(path, weights_only=True),
                          **midend(args.out / f"excerpts-{name}-midend.pt", excerpts=source["test"])}
    rows = []
    folds = [name for name in plan["sources"] if not args.only or name in args.only]
    for held in folds:
        keys = {**data, **fold_data(plan, held)}
        fold = {**cached_embeddings(args.out / f"{held}-seed{args.seed}.pt", keys, args.seed),
                **midend(args.out / f"{held}-seed{args.seed}-midend.pt", fold_keys=keys, seed=args.seed)}
        for head_seed in range(args.head_seeds):
            model = train_head(fold, recipe, head_seed, args.drop_train, fold.get("train"), args.tune_midend)
            heard = {n: {**e, "encoded": with_midend(model, e["encoded"], e.get("windows"))}
                     for n, e in excerpts.items()}
            row = {"held out": held, "head seed": head_seed,
                   "held-out solo accuracy": accuracy(
                       model, with_midend(model, fold["val_encoded"], fold.get("val")), fold["val_targets"]),
                   "held-out excerpts micro F1": excerpt_micro_f1(
                       model, heard[held], [heard[n] for n in plan["sources"] if n != held])}
            row.update({f"{name} (scored only)": accuracy(model, with_midend(model, s["val_encoded"], s.get("val")),
                                                          s["val_targets"]) for name, s in scored.items()})
            rows.append(row)
            print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
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
