"""The harmonic profile on tones whose pitch and harmonics are known, and as a part of the encoder branch."""

import numpy as np
import pytest
import torch

from irmas import harmonics
from irmas.model import InstrumentClassifier
from tests.conftest import TINY_CHANNELS

SR = 22050
K = harmonics.HARMONICS


def tone(f0: float, amplitudes, seconds: float = 3.0, vibrato_cents: float = 0.0, noise: float = 0.0) -> torch.Tensor:
    """A sum of harmonics `amplitudes[k-1] * sin(k * phase)`, with optional 5.5 Hz vibrato and white noise."""
    t = np.arange(int(seconds * SR)) / SR
    pitch = f0 * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    y = sum(a * np.sin(k * phase) for k, a in enumerate(amplitudes, start=1) if k * f0 < SR / 2)
    y = y + noise * np.random.default_rng(0).standard_normal(len(t))
    return torch.from_numpy((y / np.abs(y).max()).astype(np.float32))


def features(*waves: torch.Tensor) -> dict[str, torch.Tensor]:
    out = harmonics.HarmonicProfile(SR)(torch.stack(waves)) / harmonics.SCALE
    return {"median_db": out[:, :K] * 20, "register": out[:, 2 * K], "vibrato": out[:, 2 * K + 1],
            "odd_even_db": out[:, 2 * K + 2] * 20, "sounding": out[:, 2 * K + 3], "clean_db": out[:, 2 * K + 4:] * 20}


@pytest.mark.parametrize("f0", [65.4, 220.0, 1046.5])
def test_yin_finds_the_period_of_a_tone_across_the_range(f0):
    wave = tone(f0, [1.0, 0.5, 0.3, 0.2])
    frames = torch.nn.functional.pad(wave[None, None], (1024, 1024), mode="reflect")[0].unfold(-1, 2048, 512)
    periods = harmonics.yin_periods(frames, SR)
    np.testing.assert_allclose(np.median(SR / periods.numpy()), f0, rtol=0.005)


def test_odd_harmonics_alone_read_as_clarinet_like_and_a_full_series_does_not():
    odd = [1 / k if k % 2 else 0.0 for k in range(1, K + 1)]  # square wave: even harmonics absent
    full = [1 / k for k in range(1, K + 1)]  # sawtooth
    f = features(tone(196.0, odd), tone(196.0, full))
    assert f["odd_even_db"][0] > 30 and abs(f["odd_even_db"][1]) < 6
    assert f["median_db"][0, 1] < -60 and f["median_db"][1, 1] == pytest.approx(-6.0, abs=1.5)  # 2nd harmonic
    assert f["median_db"][:, 0].abs().max() < 0.5  # the fundamental is the loudest of both
    np.testing.assert_allclose(f["register"].numpy(), np.log2(196.0 / 55), atol=0.02)
    assert (f["sounding"] == 1).all()


def test_vibrato_and_noise_between_harmonics_are_measured():
    series = [1 / k for k in range(1, K + 1)]
    steady, wobbly, breathy = tone(440.0, series), tone(440.0, series, vibrato_cents=40), tone(440.0, series, noise=0.3)
    f = features(steady, wobbly, breathy)
    assert f["vibrato"][0] < 0.05 and 0.2 < f["vibrato"][1] < 0.5  # std of a 40-cent sine is 28 cents
    assert f["clean_db"][0, 0] > 40 and f["clean_db"][2, 0] < f["clean_db"][0, 0] - 15


def test_silence_gives_zeros_and_the_profile_is_the_same_alone_or_in_a_batch():
    series = [1 / k for k in range(1, K + 1)]
    batch = torch.stack([torch.zeros(3 * SR), tone(330.0, series), tone(110.0, series[:4])])
    profile = harmonics.HarmonicProfile(SR)
    out = profile(batch)
    assert out.shape == (3, harmonics.DIM) and torch.equal(out[0], torch.zeros(harmonics.DIM))
    torch.testing.assert_close(profile(batch[2:]), out[2:], atol=1e-5, rtol=1e-5)


def test_harmonics_join_the_encoder_branch_and_save_and_load_through_the_hub_mixin(tmp_path):
    torch.manual_seed(0)
    model = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_vgg/pool2+harmonics").eval()
    x = torch.stack([tone(262.0, [1.0, 0.3, 0.1]), 0.1 * torch.randn(3 * SR)])
    embedding = model.encode(x)
    alone = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_vgg/pool2").encode(x)
    torch.testing.assert_close(embedding, torch.cat([alone, harmonics.HarmonicProfile(SR)(x)], dim=1))
    model.save_pretrained(tmp_path)
    again = InstrumentClassifier.from_pretrained(str(tmp_path), strict=True).eval()
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    with pytest.raises(ValueError, match="harmonics"):
        InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="harmonic")
