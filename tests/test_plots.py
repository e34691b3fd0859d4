"""The figures show what the model computed: dB values of its own bands, the threshold it uses."""

import json

import numpy as np
import torch

from irmas.labels import NAMES
from irmas.plots import MAX_COLUMNS, band_spectrograms, probabilities_bar
from irmas.predict import predict_waveform
from tests.conftest import plot_array, tone


def test_spectrograms_show_each_band_in_db_over_its_own_frequencies(tiny_model):
    waveform = tone(4.0, freq=440.0)
    figure = json.loads(band_spectrograms(tiny_model.features, waveform).to_json())
    bands = tiny_model.features(torch.from_numpy(waveform)[None])
    assert [t["type"] for t in figure["data"]] == ["heatmap"] * 3
    for trace, band, spec in zip(figure["data"], tiny_model.features.bands, bands):
        z, freqs, times = plot_array(trace["z"]), plot_array(trace["y"]), plot_array(trace["x"])
        db = 20 * np.log10(np.exp(spec[0].numpy().T))
        db -= np.ceil(db.max())  # shown below the band's loudest point
        assert z.shape == db.shape and freqs.min() >= band["f_min"] and freqs.max() <= band["f_max"]
        assert times[0] == 0 and abs(times[-1] - 4.0) < 0.05
        shown = db >= trace["zmin"]  # quieter cells are clipped to the bottom of the colour scale
        assert np.max(np.abs(z[shown] - db[shown])) <= 0.5 + 1e-3
        assert (trace["zmin"], trace["zmax"]) == (-80, 0) and z.max() <= 0
    # the 440 Hz fundamental is the loudest row of the low band
    low = plot_array(figure["data"][0]["z"])
    assert abs(plot_array(figure["data"][0]["y"])[low.mean(axis=1).argmax()] - 440) < 22050 / 1024


def test_long_recordings_are_pooled_to_a_bounded_number_of_columns(tiny_model):
    figure = json.loads(band_spectrograms(tiny_model.features, tone(60.0)).to_json())
    for trace in figure["data"]:
        assert MAX_COLUMNS // 2 <= plot_array(trace["z"]).shape[1] <= MAX_COLUMNS
        assert plot_array(trace["x"])[-1] > 59


def test_bars_draw_the_threshold_and_mark_detected_instruments(tiny_model):
    prediction = predict_waveform(tiny_model, tone(3.0), threshold=0.3)
    figure = json.loads(probabilities_bar(prediction).to_json())
    assert figure["layout"]["shapes"][0]["x0"] == 0.3 == figure["layout"]["shapes"][0]["x1"]
    bar = figure["data"][0]
    red = [name for name, color in zip(bar["y"], bar["marker"]["color"]) if color == "#e4572e"]
    assert sorted(red) == sorted(NAMES[c] for c in prediction.detected)
