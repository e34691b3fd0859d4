"""The Gradio app through gradio_client, as a remote user calls it."""

import concurrent.futures
import json

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import plot_array, tone

gradio = pytest.importorskip("gradio")  # installed by requirements.txt; the skip only guards partial installs
from gradio_client import Client, handle_file  # noqa: E402


def test_analyse_returns_probabilities_and_figures(app_url, tmp_path):
    sf.write(tmp_path / "music.wav", np.stack([tone(10.0, 44100)] * 2, 1), 44100)
    result = Client(app_url, verbose=False).predict(
        handle_file(str(tmp_path / "music.wav")), api_name="/analyse")
    verdict, label, bars, spectrograms, timeline = result
    assert verdict.startswith("### Heard: ") or verdict.startswith("### None of the 11 instruments")
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert len(confidences) == 5 and all(0 <= p <= 1 for p in confidences.values())  # the top 5
    assert label["label"] == max(confidences, key=confidences.get)
    spec = json.loads(spectrograms["plot"])
    assert [t["type"] for t in spec["data"]] == ["heatmap"] * 3
    bar = json.loads(bars["plot"])["data"][0]
    assert len(bar["y"]) == 11 and bar["y"][-1] == label["label"]  # all 11, most probable on top
    assert timeline["visible"]  # shown for recordings longer than one window
    centres = plot_array(json.loads(timeline["value"]["plot"])["data"][0]["x"]).tolist()
    assert centres == [1.5, 3.0, 4.5, 6.0, 7.5, 8.5]  # 10 s -> six 3 s windows


def test_a_coarse_file_gets_its_answer_and_a_notice_under_the_verdict(app_url, tmp_path):
    sf.write(tmp_path / "quiet.wav", tone(4.0) / 0.5 * 10 ** (-60 / 20), 22050, subtype="PCM_16")
    verdict, label, *_ = Client(app_url, verbose=False).predict(handle_file(str(tmp_path / "quiet.wav")),
                                                                 api_name="/analyse")
    heading, notice = verdict.split("\n\n")
    assert heading.startswith("### Heard: ") or heading.startswith("### None of the 11 instruments")
    assert "quiet.wav is very coarse: its loudest sample is only 33 steps above silence" in notice
    assert len(label["confidences"]) == 5


@pytest.mark.parametrize("make, message", [
    (lambda p: sf.write(p, np.zeros(44100), 44100), "is silent; there is nothing to recognise"),
    (lambda p: sf.write(p, tone(0.01), 22050), "at least 0.1 s is needed"),
    (lambda p: p.write_bytes(b"definitely not audio" * 100), "not an audio file"),
])
def test_bad_input_leaves_its_sentence_and_empty_outputs_and_the_app_keeps_serving(app_url, tmp_path, make, message):
    bad = tmp_path / "bad.wav"
    make(bad)
    client = Client(app_url, verbose=False)
    verdict, label, bars, spectrograms, timeline = client.predict(handle_file(str(bad)), api_name="/analyse")
    assert verdict.startswith("### Could not analyse this input") and message in verdict
    assert not label and bars is None and spectrograms is None and not timeline["visible"]
    sf.write(tmp_path / "ok.wav", tone(3.0), 22050)
    _, label, *_ = client.predict(handle_file(str(tmp_path / "ok.wav")), api_name="/analyse")
    assert len(label["confidences"]) == 5


def test_several_clients_at_once(app_url, tmp_path):
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], tone(4.0, freq=200.0 + 50 * i), 22050)

    def call(path):
        return Client(app_url, verbose=False).predict(handle_file(str(path)), api_name="/analyse")[1]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        labels = list(pool.map(call, paths))
    assert all(len(lbl["confidences"]) == 5 for lbl in labels)


def test_the_live_view_keeps_naming_an_instrument_it_named_until_it_falls_the_hold_under_the_threshold(
        tiny_model_dir):
    """The Live tab's tick passes what its last verdict named back in: named at the threshold, kept a little under."""
    from app import build_demo
    from irmas.hub import LoadedModel
    from irmas.model import InstrumentClassifier
    from irmas.predict import LATEST_HOLD, predict_latest

    model = InstrumentClassifier.from_pretrained(str(tiny_model_dir), strict=True).eval()
    audio = tone(5.0, freq=330.0)
    probabilities = predict_latest(model, audio).probabilities
    top = int(np.argmax(probabilities))
    model.threshold = float(probabilities[top]) + LATEST_HOLD / 2  # the top instrument sits just under it
    demo = build_demo(LoadedModel(model, "local", str(tiny_model_dir)))
    classify = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "classify_live")
    heard = {"audio": audio, "seconds": 5.0, "notices": [None], "started": 0.0, "arrived": 5.0}
    *_, verdict, named = classify(heard, ())
    assert named == () and "None of the 11 instruments is heard" in verdict
    *_, verdict, named = classify(heard, (model.labels[top],))
    assert named == (model.labels[top],) and verdict.startswith("**Heard:")
    model.threshold = float(probabilities[top]) + 2 * LATEST_HOLD  # too far under: dropped
    assert classify(heard, (model.labels[top],))[-1] == ()


def test_the_live_view_hears_a_pause_as_silence_not_as_lost_audio(tiny_model_dir):
    """Silent microphone chunks count as listened to and push out what was played before them: once the player
    stops, the live view says it hears silence, not the last instrument, and not that the machine lost audio."""
    from app import build_demo
    from irmas.hub import LoadedModel
    from irmas.model import InstrumentClassifier

    model = InstrumentClassifier.from_pretrained(str(tiny_model_dir), strict=True).eval()
    demo = build_demo(LoadedModel(model, "local", str(tiny_model_dir)))
    fns = {getattr(f.fn, "__name__", ""): f.fn for f in demo.fns.values()}
    listen, classify = fns["listen"], fns["classify_live"]
    played = (tone(3.0, 48000) * 32767).astype(np.int16)
    heard = None
    for second in range(3):  # three 1 s chunks of a tone, then eight of digital silence
        heard = listen((48000, played[second * 48000:(second + 1) * 48000]), heard)
    *_, verdict, _ = classify(heard, ())
    assert "Listened to 3 s" in verdict and "silence" not in verdict, verdict
    for _ in range(8):
        heard = listen((48000, np.zeros(48000, np.int16)), heard)
    heard["arrived"] = heard["started"] + 11.0  # as the chunks came in, one a second
    label, bars, verdict, named = classify(heard, ("cel",))
    assert verdict.startswith("Only silence in the last 5 s") and "Listened to 11 s" in verdict, verdict
    assert "Missed about" not in verdict and named == () and label is None and bars is None
