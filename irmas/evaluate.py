"""The IRMAS evaluation protocol over a folder in either layout.

Training layout (single label): top-1 accuracy and macro F1 of the top prediction.
Testing layout (multi-label, the literature's numbers): micro and macro precision / recall / F1 and
per-class F1 of the thresholded clip probabilities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multilabel_f1_score,
    multilabel_precision,
    multilabel_recall,
)

from .audio import AudioError
from .data.layouts import read_layout
from .model import InstrumentClassifier
from .predict import predict_file


@dataclass
class EvaluationResult:
    layout: str
    n_files: int
    threshold: float
    metrics: dict
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason

    def to_dict(self) -> dict:
        return {"layout": self.layout, "n_files": self.n_files, "n_failed": len(self.failed),
                "threshold": self.threshold, **self.metrics, "failed": self.failed}


def _macro(per_class: torch.Tensor, present: torch.Tensor) -> float:
    """Mean over the classes the evaluated set holds: a set with no voice (the real notes) is not scored on voice,
    and its macro figure does not swing with whether some clip was called voice (IRMAS's test set holds all 11)."""
    return float(per_class[present].mean()) if bool(present.any()) else 0.0


def single_label_metrics(probabilities: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    """Top-1 accuracy, macro F1 (over the classes present) and per-class F1 for one true label per clip (`targets` =
    class indices)."""
    preds, target = torch.from_numpy(probabilities), torch.from_numpy(targets).long()
    n = len(labels)
    per_class = multiclass_f1_score(preds, target, num_classes=n, average="none")
    return {
        "accuracy": float(multiclass_accuracy(preds, target, num_classes=n, average="micro")),
        "macro_f1": _macro(per_class, torch.bincount(target, minlength=n) > 0),
        "per_class": {c: round(float(f), 4) for c, f in zip(labels, per_class)},
    }


def multi_label_metrics(probabilities: np.ndarray, targets: np.ndarray, labels: list[str],
                        threshold: float) -> dict:
    """IRMAS protocol: micro/macro P, R, F1 (macro over the classes present) and per-class F1 (`targets` = 0/1
    matrix)."""
    preds, target = torch.from_numpy(probabilities), torch.from_numpy(targets).long()
    kw = {"num_labels": len(labels), "threshold": threshold}
    present = target.sum(dim=0) > 0
    out = {}
    for name, metric in (("precision", multilabel_precision), ("recall", multilabel_recall),
                         ("f1", multilabel_f1_score)):
        out[f"micro_{name}"] = float(metric(preds, target, average="micro", **kw))
        out[f"macro_{name}"] = _macro(metric(preds, target, average="none", **kw), present)
    per_class = multilabel_f1_score(preds, target, average="none", **kw)
    out["per_class"] = {c: round(float(f), 4) for c, f in zip(labels, per_class)}
    return out


def evaluate_folder(model: InstrumentClassifier, root: str | os.PathLike, threshold: float | None = None,
                    progress: bool = False) -> EvaluationResult:
    """Predict every file of an IRMAS-layout folder and score it; unreadable files are counted, not fatal."""
    layout, examples = read_layout(root)
    threshold = model.threshold if threshold is None else threshold
    index = {code: i for i, code in enumerate(model.labels)}
    probs, targets, failed = [], [], {}
    iterator = examples
    if progress:
        from tqdm import tqdm
        iterator = tqdm(examples, desc="evaluate", unit="file")
    for ex in iterator:
        try:
            prediction = predict_file(model, ex.path, threshold=threshold)
        except AudioError as err:
            failed[str(ex.path)] = str(err)
            continue
        probs.append(prediction.probabilities)
        target = np.zeros(len(model.labels), dtype=np.int64)
        target[[index[c] for c in ex.labels]] = 1
        targets.append(target)
    if not probs:
        raise ValueError(f"{root}: none of the {len(examples)} files could be evaluated.")
    p, t = np.stack(probs).astype(np.float32), np.stack(targets)
    if layout == "training":
        metrics = single_label_metrics(p, t.argmax(axis=1), list(model.labels))
    else:
        metrics = multi_label_metrics(p, t, list(model.labels), threshold)
    return EvaluationResult(layout, len(probs), threshold, metrics, failed)
