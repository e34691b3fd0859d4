"""The harmonic profile of a window's predominant pitch: a fixed, hand-made branch of the classifier.

Which harmonics of a note are loud and how clean they are is a property of the instrument more than of the
sound bank or microphone that recorded it: a clarinet's even harmonics are weak, a flute has few and breathy
ones, a bowed string a long bright series. musicnn's mel bands blur them above a few hundred hertz. Per
frame: the pitch by YIN (de Cheveigné & Kawahara, 2002), the level of harmonics 1-16 relative to the loudest
and, for harmonics 1-8, how far each stands above the spectrum halfway to the next (noise, bow, breath).
Over the window's sounding frames: the median and spread of those, the register, the vibrato, how much the
odd harmonics outweigh the even ones, and the share of frames that sound. 44 numbers per window, no weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

FRAME, HOP, N_FFT = 2048, 512, 4096
FMIN_HZ, FMAX_HZ = 55.0, 1760.0  # A1 to A6: the lowest cello note to above the flute's and violin's range
YIN_THRESHOLD = 0.1  # the first dip of the normalised difference under this is the period (else its minimum)
HARMONICS, CLEAN_HARMONICS = 16, 8
SOUNDING = 0.05  # a frame sounds when its spectrum's sum is at least this share of the window's loudest frame
FLOOR = 1e-4  # -80 dB: a harmonic above Nyquist or not there at all
DIM = 2 * HARMONICS + 4 + CLEAN_HARMONICS
SCALE = 3.0  # the profile's weight beside the encoders' embeddings (~unit spread each; see docs/experiments.md)
VERSION = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()  # keys cached profiles to this code


def yin_periods(frames: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(batch, n, FRAME) -> (batch, n) period in samples (fractional, parabolic refinement) of each frame."""
    window = FRAME // 2
    min_lag, max_lag = int(sample_rate / FMAX_HZ), int(sample_rate / FMIN_HZ) + 1
    head = F.pad(frames[..., :window], (0, FRAME))
    spectrum = torch.fft.rfft(frames, n=2 * FRAME)
    lagged = torch.fft.irfft(torch.fft.rfft(head, n=2 * FRAME).conj() * spectrum, n=2 * FRAME)[..., :max_lag + 1]
    energy = F.pad(torch.cumsum(frames ** 2, dim=-1), (1, 0))
    lags = torch.arange(max_lag + 1, device=frames.device)
    shifted = energy[..., lags + window] - energy[..., lags]
    difference = (shifted[..., :1] + shifted - 2 * lagged).clamp_min(0)
    running = torch.cumsum(difference[..., 1:], dim=-1) / lags[1:]
    normalised = torch.cat([torch.ones_like(difference[..., :1]), difference[..., 1:] / running.clamp_min(1e-12)],
                           dim=-1)
    d = normalised[..., min_lag - 1:max_lag + 1]  # one lag either side of the search range, for the dip test
    inner = d[..., 1:-1]
    dip = (inner <= d[..., :-2]) & (inner <= d[..., 2:]) & (inner < YIN_THRESHOLD)
    first = torch.where(dip.any(dim=-1), dip.float().argmax(dim=-1), inner.argmin(dim=-1))
    at = first + 1
    left, mid, right = (d.gather(-1, (at + k)[..., None]).squeeze(-1) for k in (-1, 0, 1))
    bend = left - 2 * mid + right
    offset = torch.where(bend.abs() > 1e-12, 0.5 * (left - right) / bend, torch.zeros_like(bend)).clamp(-1, 1)
    return (first + min_lag).to(frames.dtype) + offset


def _masked_median(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(batch, n, k) over frames where mask (batch, n) -> (batch, k); 0 where no frame counts."""
    values = torch.where(mask[..., None], x, torch.full_like(x, float("nan")))
    return torch.nan_to_num(values.nanmedian(dim=1).values)


def _masked_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask[..., None].to(x.dtype)
    count = weights.sum(dim=1).clamp_min(1)
    mean = (x * weights).sum(dim=1) / count
    return (((x - mean[:, None]) ** 2 * weights).sum(dim=1) / count).sqrt()


class HarmonicProfile(nn.Module):
    """Waveforms (batch, samples) at `sample_rate` -> (batch, DIM) harmonic profile (see the module)."""

    dim = DIM

    def __init__(self, sample_rate: int):
        super().__init__()
        self.sample_rate = sample_rate
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = waveforms.float()
        padded = F.pad(x[:, None], (FRAME // 2, FRAME // 2), mode="reflect")[:, 0]
        frames = padded.unfold(-1, FRAME, HOP)
        period = yin_periods(frames, self.sample_rate)
        spectrum = torch.stft(x, N_FFT, HOP, window=self.window, center=True, return_complex=True).abs()
        spectrum = spectrum.transpose(1, 2)  # (batch, n, bins)
        n = min(spectrum.shape[1], period.shape[1])
        spectrum, period = spectrum[:, :n], period[:, :n]
        loudness = spectrum.sum(dim=2)
        sounding = loudness >= SOUNDING * loudness.amax(dim=1, keepdim=True).clamp_min(1e-12)
        f0_bins = N_FFT / period  # the pitch in FFT bins
        peaks = F.max_pool1d(spectrum.flatten(0, 1)[:, None], 3, 1, 1)[:, 0].view_as(spectrum)
        troughs = -F.max_pool1d(-spectrum.flatten(0, 1)[:, None], 3, 1, 1)[:, 0].view_as(spectrum)

        def at(values: torch.Tensor, multiples: torch.Tensor) -> torch.Tensor:
            bins = torch.round(f0_bins[..., None] * multiples)
            inside = bins < values.shape[2] - 1
            picked = values.gather(2, bins.clamp(max=values.shape[2] - 1).long())
            return torch.where(inside, picked, torch.zeros_like(picked))

        k = torch.arange(1, HARMONICS + 1, device=x.device, dtype=x.dtype)
        levels = at(peaks, k)
        profile_db = 20 * torch.log10(levels / levels.amax(dim=2, keepdim=True).clamp_min(1e-12) + FLOOR)
        between = at(troughs, k[:CLEAN_HARMONICS] + 0.5)
        clean_db = (20 * torch.log10((levels[..., :CLEAN_HARMONICS] + 1e-9) / (between + 1e-9))).clamp(-20, 60)
        f0 = self.sample_rate / period
        register = torch.log2(_masked_median(f0[..., None], sounding)[:, 0].clamp_min(FMIN_HZ) / FMIN_HZ)
        cents = 1200 * torch.log2(f0 / (FMIN_HZ * 2 ** register[:, None]))
        vibrato = _masked_std(cents.clamp(-200, 200)[..., None], sounding)[:, 0] / 100
        weights = sounding.to(x.dtype)
        count = weights.sum(dim=1).clamp_min(1)
        odd_even = ((profile_db[..., 0::2].mean(dim=2) - profile_db[..., 1::2].mean(dim=2)) * weights).sum(1) / count
        features = torch.cat([
            _masked_median(profile_db, sounding) / 20, _masked_std(profile_db, sounding) / 10,
            torch.stack([register, vibrato, odd_even / 20, weights.mean(dim=1)], dim=1),
            _masked_median(clean_db, sounding) / 20,
        ], dim=1)
        silent = ~sounding.any(dim=1)
        return SCALE * torch.where(silent[:, None], torch.zeros_like(features), features)
