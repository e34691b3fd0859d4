import librosa
import numpy as np
import torch

from irmas.features import BANDS, LOG_FLOOR, ThreeBandSTFT, band_bins
from tests.conftest import tone


def librosa_bands(y: np.ndarray, sr: int = 22050) -> list[np.ndarray]:
    """Reference: the same bands with librosa's STFT, (frames, bins) per band."""
    out = []
    for band in BANDS:
        mag = np.abs(librosa.stft(y, n_fft=band["n_fft"], hop_length=band["hop"], window="hann", center=True))
        freqs = librosa.fft_frequencies(sr=sr, n_fft=band["n_fft"])
        keep = (freqs >= band["f_min"]) & (freqs <= band["f_max"])
        out.append(np.log(np.maximum(mag[keep], LOG_FLOOR)).T)
    return out


def test_three_bands_match_librosa_reference():
    rng = np.random.default_rng(0)
    y = (tone(3.0) + 0.05 * rng.standard_normal(66150)).astype(np.float32)
    ours = ThreeBandSTFT()(torch.from_numpy(y)[None])
    for got, ref in zip(ours, librosa_bands(y)):
        assert got.shape[1:] == ref.shape
        assert torch.allclose(got[0], torch.from_numpy(ref).float(), atol=2e-3)


def test_band_edges_cover_0_to_11025_hz_without_overlap():
    edges = []
    for band in BANDS:
        first, last = band_bins(band)
        hz = 22050 / band["n_fft"]
        edges.append((first * hz, (last - 1) * hz))
    assert edges[0][0] == 0 and edges[2][1] == 11025
    assert edges[0][1] <= 1000 <= edges[1][0] and edges[1][1] <= 4000 <= edges[2][0]


def test_features_stay_fp32_under_autocast():
    y = torch.from_numpy(tone(3.0))[None].repeat(2, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ThreeBandSTFT()(y.bfloat16())
    assert all(o.dtype == torch.float32 for o in out)
