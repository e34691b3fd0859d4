"""Leave-one-source-out: train a recipe without one source, evaluate on that source, for every source.

Figures on the training sources stopped predicting what users get, so recipes are chosen on sources the
model never heard. A source is a sound bank or the real recorded notes, rendered into the IRMAS layouts
(solo clips, multi-instrument excerpts for evaluation, excerpts cut into clips for training). Each fold runs
`python -m train fit` with the recipe's data keys replaced, keeps its last epoch (never the epoch best on
the held-out source: that would tune on it), calibrates the threshold on the other sources' excerpts, and
reports solo accuracy and excerpt micro F1 on the held-out source, then the mean over folds. It also reports the
threshold that would have been best on the held-out excerpts: the mean of its shift from the calibrated one is
what `python -m train calibrate --shift` applies to a model for sound it never heard.

    python -m train loso train/configs/loso.yaml --seed 0 [--seed 1 ...] [--only samples] [--out DIR] \
        [-- --model.encoder MSD_musicnn ...]   # `train fit` overrides of the recipe for every fold
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def fold_data(plan: dict, held: str) -> dict[str, list[str]]:
    """The recipe's data keys for the fold without `held`: every other source's clips, excerpts and negatives;
    `held`'s solo clips as validation."""
    sources = plan["sources"]
    kept = [name for name in sources if name != held]
    recipe_negatives = (yaml.safe_load(Path(plan["recipe"]).read_text()).get("data") or {}).get("negative_dirs") or []
    left_out = set(sources[held].get("extra_negatives", []))
    return {"train_dirs": [d for n in kept for d in [sources[n]["train"], *sources[n].get("extra_train", [])]],
            "negative_dirs": [d for d in recipe_negatives if d not in left_out],
            "mixture_dirs": [sources[n]["mixtures"] for n in kept if sources[n].get("mixtures")],
            "val_dirs": [sources[held]["train"]]}


def fold_command(plan: dict, held: str, seed: int, root: Path, overrides: list[str]) -> list[str]:
    """The `python -m train fit` call of one fold: every source but `held`, validated on `held`'s clips."""
    data = [arg for key, value in fold_data(plan, held).items() for arg in (f"--data.{key}", json.dumps(value))]
    return [sys.executable, "-m", "train", "fit", "--config", str(last_epoch_recipe(plan["recipe"], root)),
            "--seed_everything", str(seed), "--data.seed", str(seed), *data,
            "--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root),
            *overrides]


def last_epoch_recipe(recipe: str, root: Path) -> Path:
    """The recipe with its checkpoint kept for the last epoch, not the best one: the recipe's ModelCheckpoint
    monitors validation, which here is the held-out source (and save_last only copies what it saves)."""
    config = yaml.safe_load(Path(recipe).read_text())
    for callback in config.get("trainer", {}).get("callbacks", []) or []:
        if callback.get("class_path", "").endswith("ModelCheckpoint"):
            callback["init_args"] = {**callback.get("init_args", {}), "monitor": "step", "mode": "max",
                                     "save_last": True, "filename": "last-{epoch}"}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_fold(plan: dict, held: str, seed: int, out: Path, overrides: list[str]) -> dict:
    """Train, export, calibrate and evaluate one fold; returns its figures (also in `out/<fold>/result.json`)."""
    from irmas.evaluate import evaluate_folder
    from irmas.hub import load_model

    from .calibrate import best_threshold, calibrate
    from .export import export

    root = out / f"{held}-seed{seed}"
    result_path = root / "result.json"
    if result_path.is_file():  # a finished fold is not run again
        return json.loads(result_path.read_text())
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fit.log", "w") as log:
        subprocess.run(fold_command(plan, held, seed, root, overrides), check=True, stdout=log,
                       stderr=subprocess.STDOUT)
    # last.ckpt where the recipe's ModelCheckpoint saves one, else Lightning's default (the last epoch's)
    checkpoints = sorted(root.glob("lightning_logs/version_*/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime)
    last = next((p for p in checkpoints if p.name == "last.ckpt"), checkpoints[-1])
    model_dir = root / "model"
    export(last, model_dir, {"config": Path(plan["recipe"]).read_text()})
    sources = plan["sources"]
    threshold, _ = calibrate(model_dir, [sources[n]["test"] for n in sources if n != held])
    model = load_model(str(model_dir)).model
    solo = evaluate_folder(model, sources[held]["train"], progress=False).to_dict()
    excerpts = evaluate_folder(model, sources[held]["test"], progress=False).to_dict()
    held_threshold, held_f1 = best_threshold(model, [sources[held]["test"]])  # reported, never used on this fold
    result = {"held_out": held, "seed": seed, "threshold": threshold,
              "held_out_threshold": held_threshold, "held_out_best_micro_f1": round(held_f1, 4),
              "solo_accuracy": round(solo["accuracy"], 4), "solo_macro_f1": round(solo["macro_f1"], 4),
              "excerpt_micro_f1": round(excerpts["micro_f1"], 4), "excerpt_macro_f1": round(excerpts["macro_f1"], 4),
              "solo_per_class_f1": solo["per_class"]}
    result_path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def table(results: list[dict]) -> str:
    """Markdown: one row per fold and seed, then the mean over folds (of the seeds' means). The threshold shift
    is the held-out excerpts' best threshold minus the calibrated one (blank for folds that did not record it)."""
    rows = ["| never heard | seed | solo accuracy | solo macro F1 | excerpts micro F1 | excerpts macro F1 | "
            "threshold shift |", "|---|---|---|---|---|---|---|"]
    keys = ("solo_accuracy", "solo_macro_f1", "excerpt_micro_f1", "excerpt_macro_f1")

    def shift(r: dict) -> float | None:
        return r["held_out_threshold"] - r["threshold"] if "held_out_threshold" in r else None

    def fold_means(values: dict[str, list[float]]) -> float | None:
        per_fold = [sum(v) / len(v) for v in values.values() if v]
        return sum(per_fold) / len(per_fold) if per_fold else None

    for r in results:
        rows.append(f"| {r['held_out']} | {r['seed']} | " + " | ".join(f"{r[k]:.3f}" for k in keys)
                    + (f" | {shift(r):+.2f} |" if shift(r) is not None else " | |"))
    folds = sorted({r["held_out"] for r in results})
    means = [fold_means({f: [r[k] for r in results if r["held_out"] == f] for f in folds}) for k in keys]
    mean_shift = fold_means({f: [shift(r) for r in results if r["held_out"] == f and shift(r) is not None]
                             for f in folds})
    rows.append(f"| **mean of {len(folds)} folds** | | " + " | ".join(f"**{m:.3f}**" for m in means)
                + (f" | **{round(mean_shift, 3) + 0.0:+.3f}** |" if mean_shift is not None else " | |"))
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m train loso", description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path,
                        help="YAML: recipe, out, sources (name: train, mixtures, test; optional extra_train, "
                             "extra_negatives)")
    parser.add_argument("--seed", type=int, action="append", default=None, help="repeat for several seeds")
    parser.add_argument("--only", action="append", default=None, help="run only these held-out sources")
    parser.add_argument("--out", type=Path, default=None, help="folder of the folds (default: the plan's `out`)")
    cut = argv.index("--") if "--" in argv else len(argv)
    args, overrides = parser.parse_args(argv[:cut]), argv[cut + 1:]  # after --: `train fit` arguments
    plan = yaml.safe_load(args.plan.read_text())
    out = args.out or Path(plan.get("out", "runs/loso"))
    results = []
    for seed in args.seed or [0]:
        for held in args.only or list(plan["sources"]):
            print(f"fold: without {held}, seed {seed}", file=sys.stderr)
            results.append(run_fold(plan, held, seed, out, overrides))
    print(table(results))
    return 0
