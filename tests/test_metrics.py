"""The IRMAS-protocol numbers on hand-checked cases."""

import numpy as np
import pytest

from irmas.evaluate import multi_label_metrics, single_label_metrics
from irmas.labels import CODES


def test_multi_label_micro_and_macro_f1_by_hand():
    targets = np.zeros((2, 11), dtype=np.int64)
    targets[0, [0, 1]] = 1  # cel, cla
    targets[1, [2]] = 1  # flu
    probs = np.zeros((2, 11), dtype=np.float32)
    probs[0, [0, 3]] = 0.9  # cel right, gac wrong, cla missed
    probs[1, [2]] = 0.8  # flu right
    m = multi_label_metrics(probs, targets, list(CODES), threshold=0.5)
    # micro: TP 2, FP 1, FN 1 -> P = R = F1 = 2/3
    assert m["micro_precision"] == pytest.approx(2 / 3) and m["micro_f1"] == pytest.approx(2 / 3)
    assert m["per_class"]["cel"] == 1.0 and m["per_class"]["cla"] == 0.0 and m["per_class"]["gac"] == 0.0
    # macro over the three classes the set holds: cel 1, cla 0, flu 1; gac's false detection counts in micro only
    assert m["macro_f1"] == pytest.approx(2 / 3) and m["macro_recall"] == pytest.approx(2 / 3)
    assert m["macro_precision"] == pytest.approx(2 / 3)


def test_macro_f1_of_a_set_without_a_class_does_not_swing_with_one_false_call_of_it():
    targets = np.array([0, 0, 1, 1, 2, 2])  # three of the 11 classes; the rest (voice among them) absent
    right = np.eye(11, dtype=np.float32)[targets]
    assert single_label_metrics(right, targets, list(CODES))["macro_f1"] == pytest.approx(1.0)
    one_called_voice = right.copy()
    one_called_voice[5] = np.eye(11, dtype=np.float32)[CODES.index("voi")]  # a flute clip called voice
    m = single_label_metrics(one_called_voice, targets, list(CODES))
    assert m["macro_f1"] == pytest.approx((1 + 1 + 2 / 3) / 3)  # flute's F1 falls; voice is not averaged in
    assert m["per_class"]["voi"] == 0.0


def test_single_label_accuracy_is_top1():
    probs = np.eye(11, dtype=np.float32)[[0, 1, 2, 2]]
    m = single_label_metrics(probs, np.array([0, 1, 2, 3]), list(CODES))
    assert m["accuracy"] == pytest.approx(0.75)
