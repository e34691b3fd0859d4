import numpy as np
import pytest
import soundfile as sf
import torch

from irmas.predict import frame_windows, predict_file, predict_waveform
from tests.conftest import tone


@pytest.mark.parametrize("seconds, n_windows", [(0.5, 1), (3.0, 1), (4.0, 2), (10.0, 6), (60.0, 39)])
def test_recordings_of_any_length_are_cut_into_3s_windows_covering_the_end(seconds, n_windows):
    n = int(seconds * 22050)
    frames, starts = frame_windows(np.ones(n, dtype=np.float32), 66150, 33075)
    assert frames.shape == (n_windows, 66150)
    assert starts[-1] + 66150 >= n  # the tail is covered
    if seconds < 3:
        assert frames[0, n:].sum() == 0 and frames[0, :n].sum() == n  # zero-padded short clip


def test_clip_probabilities_are_the_mean_of_the_window_timeline(tiny_model):
    rng = np.random.default_rng(1)
    y = np.concatenate([tone(5.0, freq=220.0), 0.3 * rng.standard_normal(5 * 22050).astype(np.float32)])
    pred = predict_waveform(tiny_model, y, hop_seconds=1.0)
    assert pred.timeline.shape == (8, 11)
    assert np.allclose(pred.probabilities, pred.timeline.mean(axis=0))
    assert not np.allclose(pred.timeline[0], pred.timeline[-1])  # windows differ: a real timeline
    assert list(pred.window_starts) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_several_instruments_can_be_detected_at_once(tiny_model_dir):
    from irmas.model import InstrumentClassifier

    model = InstrumentClassifier.from_pretrained(str(tiny_model_dir), strict=True).eval()
    with torch.no_grad():
        model.head.bias[:] = -8.0
        model.head.bias[[3, 6]] = 8.0  # gac and pia
    pred = predict_waveform(model, tone(4.0))
    assert pred.detected == ["gac", "pia"] or pred.detected == ["pia", "gac"]
    assert pred.probabilities.sum() > 1.5  # independent sigmoids, not a softmax


def test_detected_follows_the_threshold_and_says_plainly_when_nothing_is_heard(tiny_model):
    none = predict_waveform(tiny_model, tone(3.0), threshold=1.01)
    assert none.detected == [] and none.summary.startswith("None of the 11 instruments is heard")
    low = predict_waveform(tiny_model, tone(3.0), threshold=0.0)
    assert len(low.detected) == 11 and low.summary.startswith("Heard: ") and " and " in low.summary


def test_json_rounds_timeline_and_probabilities_to_four_digits(tiny_model):
    out = predict_waveform(tiny_model, tone(7.0)).to_dict()
    values = list(out["probabilities"].values()) + [v for row in out["timeline"]["probabilities"] for v in row]
    assert all(len(repr(v).split(".")[-1]) <= 4 for v in values)


def test_stereo_48k_file_gives_same_probabilities_as_mono_22k(tmp_path, tiny_model):
    sf.write(tmp_path / "s.wav", np.stack([tone(4.0, 48000)] * 2, axis=1), 48000, subtype="FLOAT")
    sf.write(tmp_path / "m.wav", tone(4.0, 22050), 22050, subtype="FLOAT")
    a, b = predict_file(tiny_model, tmp_path / "s.wav"), predict_file(tiny_model, tmp_path / "m.wav")
    assert np.max(np.abs(a.probabilities - b.probabilities)) < 0.02


def test_recording_level_does_not_change_the_result(tiny_model):
    loud, quiet = predict_waveform(tiny_model, tone(3.0, amp=0.9)), predict_waveform(tiny_model, tone(3.0, amp=0.01))
    assert np.allclose(loud.probabilities, quiet.probabilities, atol=1e-4)
