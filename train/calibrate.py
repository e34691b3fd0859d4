"""Pick the detection threshold that maximises micro F1 on test-layout folders; store it in config.json.

Window-averaged sigmoids of an instrument that plays alongside others sit lower than those of a solo
instrument, so 0.5 under-detects on multi-label excerpts. Use folders that are not the reported test
data (e.g. a render with another seed from the training banks). A model is surer of the sources it trained
on than of others, so the threshold best there need not be best on sound it never heard: `--shift` moves it by
what leave-one-source-out measured (train/loso.py).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from irmas.data.layouts import read_testing
from irmas.evaluate import multi_label_metrics
from irmas.hub import load_model
from irmas.predict import predict_file

THRESHOLDS = np.round(np.arange(0.05, 0.95, 0.01), 2)


def best_threshold(model, folders: list[str | os.PathLike]) -> tuple[float, float]:
    """(threshold, micro F1 there): the threshold of `THRESHOLDS` that maximises micro F1 on the excerpts of
    `folders` (testing layout)."""
    examples = [ex for folder in folders for ex in read_testing(folder)]
    if not examples:
        raise ValueError(f"no testing-layout files (.wav + .txt) in {folders}")
    probs = np.stack([predict_file(model, ex.path).probabilities for ex in examples]).astype(np.float32)
    targets = np.zeros_like(probs, dtype=np.int64)
    for row, ex in zip(targets, examples):
        row[[model.labels.index(c) for c in ex.labels]] = 1
    scores = [multi_label_metrics(probs, targets, model.labels, float(t))["micro_f1"] for t in THRESHOLDS]
    best = int(np.argmax(scores))
    return float(THRESHOLDS[best]), float(scores[best])


def calibrate(model_dir: str | os.PathLike, folders: list[str | os.PathLike],
              shift: float = 0.0) -> tuple[float, float]:
    """Returns (threshold, micro F1 there); writes the threshold into config.json and the model card.

    `shift` moves the threshold from the calibration excerpts' best: the mean by which sources a model never
    heard are best served by another threshold than its training sources (`python -m train loso` reports it).
    """
    model = load_model(str(model_dir)).model
    best, f1 = best_threshold(model, folders)
    n_examples = sum(len(read_testing(folder)) for folder in folders)
    threshold = round(float(min(max(best + shift, THRESHOLDS[0]), THRESHOLDS[-1])), 2)
    config_path = Path(model_dir) / "config.json"
    config = json.loads(config_path.read_text())
    config["threshold"] = threshold
    config_path.write_text(json.dumps(config, indent=2))
    card = Path(model_dir) / "README.md"
    if card.is_file():  # keep the model card's statement in step with the config
        sentence = r"Detection threshold: [0-9.]+?(?: \([^)]*\))?\.(?=\s|$)"  # with its calibration note, if any
        moved = f" at {best}, moved by {shift:+.2f} for sources never heard" if shift else ""
        text = re.sub(sentence, f"Detection threshold: {threshold} (micro F1 {f1:.3f} on {n_examples} "
                      f"calibration excerpts{moved}).", card.read_text())
        card.write_text(text)
    return threshold, f1
