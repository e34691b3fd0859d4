"""The three-band feature module vs the same computation in librosa, per clip and batched."""

from __future__ import annotations

import numpy as np
import torch

from irmas.features import ThreeBandSTFT

from .common import median_ms, table


def librosa_bands(y: np.ndarray, module: ThreeBandSTFT) -> list[np.ndarray]:
    import librosa

    out = []
    for band, (first, last) in zip(module.bands, module.bins):
        mag = np.abs(librosa.stft(y, n_fft=band["n_fft"], hop_length=band["hop"], window="hann"))
        out.append(np.log(np.maximum(mag[first:last], 1e-5)).T)
    return out


def run(repeat: int = 10) -> str:
    module = ThreeBandSTFT()
    rng = np.random.default_rng(0)
    clips = rng.standard_normal((16, 66150)).astype(np.float32) * 0.3
    x = torch.from_numpy(clips)
    with torch.inference_mode():
        ours = module(x[:1])
        diff = max(float(np.max(np.abs(o[0].numpy() - r))) for o, r in zip(ours, librosa_bands(clips[0], module)))
        rows = [
            ["per clip", f"{median_ms(lambda: module(x[:1]), repeat):.2f}",
             f"{median_ms(lambda: librosa_bands(clips[0], module), repeat):.2f}"],
            ["batch of 16, per clip", f"{median_ms(lambda: module(x), repeat) / 16:.2f}",
             f"{median_ms(lambda: [librosa_bands(c, module) for c in clips], max(3, repeat // 3)) / 16:.2f}"],
        ]
    return table(f"Features, 3 s clip (ms, medians; max |difference| {diff:.1e} in log magnitude)",
                 ["case", "torch module", "librosa"], rows)
