"""Three-band log-magnitude STFT front end, as a torch module so training and inference share it.

Each band has its own resolution: long windows where pitches are close together (bass), short ones
where timbre lives in fast detail (treble). Always computed in fp32, even under autocast.
"""

from __future__ import annotations

import torch
from torch import nn

from .audio import SAMPLE_RATE

# name, lowest Hz, highest Hz, n_fft, hop length (samples at SAMPLE_RATE). One hop for all bands keeps
# their frames aligned in time (11.6 ms) and the towers cheap enough for a laptop CPU.
BANDS: tuple[dict, ...] = (
    {"name": "low", "f_min": 0.0, "f_max": 1000.0, "n_fft": 1024, "hop": 256},
    {"name": "mid", "f_min": 1000.0, "f_max": 4000.0, "n_fft": 512, "hop": 256},
    {"name": "high", "f_min": 4000.0, "f_max": 11025.0, "n_fft": 256, "hop": 256},
)
LOG_FLOOR = 1e-5  # magnitude floor before the log: -100 dB


def band_bins(band: dict, sample_rate: int = SAMPLE_RATE) -> tuple[int, int]:
    """STFT bin range [first, last) whose centre frequencies lie inside the band (inclusive edges)."""
    bin_hz = sample_rate / band["n_fft"]
    first = int(-(-band["f_min"] // bin_hz))  # ceil
    last = int(band["f_max"] // bin_hz) + 1
    return first, min(last, band["n_fft"] // 2 + 1)


class ThreeBandSTFT(nn.Module):
    """Waveforms (batch, samples) -> list of log-magnitudes (batch, frames, bins), one per band."""

    def __init__(self, bands: tuple[dict, ...] | list[dict] = BANDS, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        self.bands = [dict(b) for b in bands]
        self.sample_rate = sample_rate
        self.bins = [band_bins(b, sample_rate) for b in self.bands]
        for i, band in enumerate(self.bands):
            self.register_buffer(f"window{i}", torch.hann_window(band["n_fft"]), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> list[torch.Tensor]:
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            waveforms = waveforms.float()
            out = []
            for i, (band, (first, last)) in enumerate(zip(self.bands, self.bins)):
                spec = torch.stft(
                    waveforms, n_fft=band["n_fft"], hop_length=band["hop"], window=getattr(self, f"window{i}"),
                    center=True, pad_mode="constant", return_complex=True,
                )
                mag = spec[:, first:last].abs()
                out.append(torch.log(mag.clamp_min(LOG_FLOOR)).transpose(1, 2))
            return out

    def frequencies(self, band_index: int) -> torch.Tensor:
        """Centre frequency in Hz of each bin of a band (for plot axes)."""
        first, last = self.bins[band_index]
        return torch.arange(first, last) * self.sample_rate / self.bands[band_index]["n_fft"]

    def frame_times(self, band_index: int, n_frames: int) -> torch.Tensor:
        """Time in seconds of each frame centre of a band."""
        return torch.arange(n_frames) * self.bands[band_index]["hop"] / self.sample_rate
