"""musicnn (Pons & Serra, 2019) in PyTorch: CNNs trained on real music, as an embedding for the classifier.

The towers learn timbre from rendered audio only; musicnn learnt it from ~25,000 real songs (MagnaTagATune,
"MTT") or ~200,000 (Million Song Dataset, "MSD"). Its front end has "timbral" filters (7 frames x 38 or 67 of
its 96 mel bands) and "temporal" ones (32-128 frames x 1 band), max-pooled over frequency; a dense mid-end of
three 1-d convolutions with residual connections; then max and mean over time, and a 200-unit penultimate
layer. The same wheel has the authors' VGG-style baseline (`Vgg`), trained on the same songs: small 3x3 filters
that keep where in frequency a timbre lies, which musicnn's front end pools away.

The weights are the authors' TensorFlow checkpoints from the `musicnn` 0.1.0 wheel (ISC licence), converted
once by `tools/convert_musicnn.py` to `irmas/weights/<name>.safetensors`; their sha256 is checked on load.
`EncoderBranch` is what the classifier holds: one or more of these networks, each giving one layer's embedding.
Input: waveforms at any rate (resampled to 16 kHz here), 3 s windows (187 frames of 16 ms).
"""

from __future__ import annotations

import hashlib
import inspect
from functools import partial
from pathlib import Path

import numpy as np
import soxr
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from .harmonics import DIM as HARMONIC_DIM
from .harmonics import HarmonicProfile

SAMPLE_RATE = 16000
N_FFT, HOP, N_MELS = 512, 256, 96
N_FRAMES = 187  # 3 s: the patch length the published models were trained on
EMBED_DIM = 200  # the penultimate layer
POOLED_DIM = 1506  # max and mean over time of the front and mid end's 753 channels (after their BatchNorm)
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default
WEIGHTS_DIR = Path(__file__).parent / "weights"
# sha256 of the converted weights, so a damaged or substituted file is refused
WEIGHTS_SHA256 = {
    "MTT_musicnn": "a2bd4ec7bf9f88bbe9ab9275f0836c1b7595c108b6c061728e3069c8bfc45de9",
    "MSD_musicnn": "ef72ef10baebe9c5086bec59ca45d366fb3d1907c909598b33a5934116326587",
    "MTT_vgg": "5e604c2bfd807a0abaa7a23bdf854dd20d7e193e6c5de924d58d33c4de94915f",
    "MSD_vgg": "bb7294c220506d9f2abdea84635f285f411a39c54a47653c028ae71e22b424ab",
}
TIMBRAL = ((38, 204), (67, 204))  # (mel bands spanned, filters): int(0.4 * 96), int(0.7 * 96); 1.6 x 128 filters
TEMPORAL = ((128, 51), (64, 51), (32, 51))  # (frames spanned, filters); 1.6 x 32 filters
MIDEND = 64
VGG_FILTERS = 128
VGG_POOLS = ((4, 1), (2, 2), (2, 2), (2, 2), (4, 4))  # (frames, bands) max-pooled after each block
# The original's first pool steps (2, 2) with its (4, 1) kernel, so it keeps every other band: block 1's conv
# computes only those (stride 2 over bands) and its pool then steps 2 frames. Same numbers, half the work.
VGG_FIRST_CONV_STRIDE, VGG_FIRST_POOL_STRIDE = (1, 2), (2, 1)
VGG_BANDS = (48, 24, 12, 6, 1)  # mel positions left after each block
# width of each layer an encoder branch can take: "MSD_musicnn" (penultimate), "MSD_musicnn/pooled", "MTT_vgg/pool3"
HARMONICS = "harmonics"  # the part of an encoder spec that is irmas.harmonics' profile, not a network
LAYER_DIMS = {"penultimate": EMBED_DIM, "pooled": POOLED_DIM, "profile": HARMONIC_DIM,
              **{f"pool{i}": bands * VGG_FILTERS for i, bands in enumerate(VGG_BANDS, start=1)}}


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale, area-normalised: librosa's default,
    which musicnn's spectrograms were computed with."""
    def hz_to_mel(hz):
        hz = np.asarray(hz, dtype=np.float64)
        linear = hz / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log, linear)

    def mel_to_hz(mel):
        linear = mel * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
        return np.where(mel >= 15.0, log, linear)

    fft_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


class MelFrontEnd(nn.Module):
    """Waveforms at `sample_rate` -> musicnn's input: log10(1 + 10,000 x mel power), (batch, frames, 96).

    As the original: resampled to 16 kHz by soxr (librosa's resampler, so the mel bands near 8 kHz match too;
    it runs on the host, and nothing upstream of the front end needs a gradient), 512-point Hann STFT every 256
    samples (centred, zero-padded), power, Slaney mel filters, the mel power rounded to float16 (the original
    stored its spectrograms so), then the log.
    """

    def __init__(self, sample_rate: int):
        super().__init__()
        self.sample_rate = sample_rate
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_filterbank()), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            x = waveforms.float()
            if self.sample_rate != SAMPLE_RATE:
                host = x.detach().cpu().numpy().T  # soxr resamples (samples, channels): the whole batch at once
                x = torch.from_numpy(soxr.resample(host, self.sample_rate, SAMPLE_RATE, "HQ").T.copy()).to(x)
            spec = torch.stft(x, N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                              return_complex=True)
            power = spec.real ** 2 + spec.imag ** 2
            mel = torch.matmul(self.mel, power).transpose(1, 2)
            return torch.log10(10000 * mel.half().float() + 1)


class _ConvBN(nn.Module):
    """conv -> ReLU -> BatchNorm, the original's order."""

    def __init__(self, conv: nn.Module, channels: int):
        super().__init__()
        self.conv = conv
        norm = nn.BatchNorm2d if isinstance(conv, nn.Conv2d) else nn.BatchNorm1d
        self.bn = norm(channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))

    def max_pooled(self, x: torch.Tensor, pool) -> torch.Tensor:
        """`pool(forward(x))` for a max-pooling `pool`. In eval mode ReLU and BatchNorm are monotonic per channel,
        so they are applied after pooling (to the maximum, or to the minimum where BatchNorm's scale is negative,
        taken as the maximum of the negated filter): the same numbers with one pass over the largest tensors of
        the model instead of three. Dead filters (`live_filters`) are not computed: their output is their bias."""
        if self.training:
            return pool(self.forward(x))
        bn, conv = self.bn, self.conv
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        sign = torch.where(scale >= 0, 1.0, -1.0).to(scale)
        live = live_filters(conv.weight)
        weight = (conv.weight * sign.view((-1,) + (1,) * (conv.weight.dim() - 1)))[live]
        extreme = pool(conv._conv_forward(x, weight.contiguous(), (conv.bias * sign)[live]))
        shape = (-1,) + (1,) * (extreme.dim() - 2)  # per channel, broadcast over the positions
        out = F.relu(extreme * sign[live].view(shape)) * scale[live].view(shape) + shift[live].view(shape)
        if bool(live.all()):
            return out
        constant = F.relu(conv.bias) * scale + shift  # what a dead filter gives everywhere
        full = constant.view(shape).expand(out.shape[0], -1, *out.shape[2:]).clone(
            memory_format=torch.channels_last if out.is_contiguous(memory_format=torch.channels_last) and out.dim() == 4
            else torch.contiguous_format)
        full[:, live] = out
        return full


DEAD_WEIGHT = 1e-20  # a filter whose weights are all smaller adds under 1e-17 to its bias: nothing float32 holds


def live_filters(weight: torch.Tensor) -> torch.Tensor:
    """Which output channels of a conv weight (out, ...) do anything. The published musicnn and VGG weights have
    many filters that training drove to ~1e-30 (MSD_musicnn: 164 of the 204 narrow timbral filters, 183 of the
    wide ones), which cost as much to convolve as the rest."""
    return weight.flatten(1).abs().amax(dim=1) >= DEAD_WEIGHT


def _max_over_frequency(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, frames, bands) -> (batch, channels, frames): musicnn's front-end pooling."""
    return x.amax(dim=3)


class Musicnn(nn.Module):
    """musicnn: log-mel (batch, frames, 96) -> penultimate (batch, 200), and tag logits with `tags=True`;
    `layer="pooled"`: the normalised max and mean over time of every front- and mid-end channel (batch, 1506)."""

    def __init__(self, n_tags: int = 50):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(_ConvBN(nn.Conv2d(1, filters, (7, bands)), filters) for bands, filters in TIMBRAL)
        self.temporal = nn.ModuleList(_ConvBN(nn.Conv2d(1, filters, (frames, 1)), filters)
                                      for frames, filters in TEMPORAL)
        front = sum(f for _, f in TIMBRAL) + sum(f for _, f in TEMPORAL)  # 561
        self.midend = nn.ModuleList(_ConvBN(nn.Conv1d(width, MIDEND, 7, padding=3), MIDEND)
                                    for width in (front, MIDEND, MIDEND))
        pooled = 2 * (front + 3 * MIDEND)  # max and mean over time of 753 channels
        self.pool_bn = nn.BatchNorm1d(pooled, eps=BN_EPS)
        self.dense = nn.Linear(pooled, EMBED_DIM)
        self.dense_bn = nn.BatchNorm1d(EMBED_DIM, eps=BN_EPS)
        self.tags = nn.Linear(EMBED_DIM, n_tags)

    def forward(self, mel: torch.Tensor, tags: bool = False, layer: str = "penultimate"):
        x = self.input_bn(mel[:, None])  # (batch, 1, frames, 96)
        padded = F.pad(x, (0, 0, 3, 3))  # time only: the timbral filters' "same" in time
        features = [block.max_pooled(padded, _max_over_frequency) for block in self.timbral]
        for block, (frames, _) in zip(self.temporal, TEMPORAL):
            # TensorFlow's "same" for an even kernel puts the extra frame after
            features.append(block.max_pooled(F.pad(x, (0, 0, frames // 2 - 1, frames // 2)), _max_over_frequency))
        front = torch.cat(features, dim=1)  # (batch, 561, frames)
        h1 = self.midend[0](front)
        h2 = self.midend[1](h1) + h1
        h3 = self.midend[2](h2) + h2
        dense = torch.cat([front, h1, h2, h3], dim=1)  # (batch, 753, frames)
        pooled = torch.stack([dense.amax(dim=2), dense.mean(dim=2)], dim=2).flatten(1)  # max, mean per channel
        if layer == "pooled":
            return self.pool_bn(pooled)
        x = F.dropout(self.pool_bn(pooled), 0.5, self.training)
        penultimate = self.dense_bn(F.relu(self.dense(x)))
        if not tags:
            return penultimate
        return penultimate, self.tags(F.dropout(penultimate, 0.5, self.training))


FRONT_CHANNELS = sum(f for _, f in TIMBRAL) + sum(f for _, f in TEMPORAL)  # 561, the front end's output
# where the mid-end's numbers lie in musicnn's pooled layer: the maximum and mean over time of its three layers
MIDEND_POOLED = slice(2 * FRONT_CHANNELS, 2 * (FRONT_CHANNELS + 3 * MIDEND))


def pooled_and_first_midend(net: Musicnn, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`net(mel, layer="pooled")` and, on the way, its first mid-end layer's output (batch, 64, frames): what
    training keeps of each clip so that the two layers above it train without the front end (`midend_pooled`)."""
    kept = []
    hook = net.midend[0].register_forward_hook(lambda module, inputs, output: kept.append(output))
    try:
        pooled = net(mel, layer="pooled")
    finally:
        hook.remove()
    return pooled, kept[0]


def midend_pooled(net: Musicnn, first: torch.Tensor) -> torch.Tensor:
    """The mid-end's part (`MIDEND_POOLED`) of `net`'s pooled layer from its first mid-end layer's output, through
    the other two as they are now and the pooling BatchNorm's fixed statistics: as `Musicnn.forward` in eval mode,
    with a gradient for `midend[1]` and `midend[2]`."""
    h1 = first.float()
    h2 = net.midend[1](h1) + h1
    h3 = net.midend[2](h2) + h2
    dense = torch.cat([h1, h2, h3], dim=1)
    pooled = torch.stack([dense.amax(dim=2), dense.mean(dim=2)], dim=2).flatten(1)
    bn, own = net.pool_bn, MIDEND_POOLED
    return F.batch_norm(pooled, bn.running_mean[own], bn.running_var[own], bn.weight[own], bn.bias[own], False,
                        0.0, bn.eps)


def _channels_last_max_pool(x: torch.Tensor, kernel_size, stride) -> torch.Tensor:
    """Max-pooling with channels last in memory (then kept for the next conv): on a CPU PyTorch pools so ~20x
    faster than over (frames, bands) planes."""
    return F.max_pool2d(x.contiguous(memory_format=torch.channels_last), kernel_size, stride)


class Vgg(nn.Module):
    """musicnn's VGG-style baseline: log-mel (batch, frames, 96) -> five blocks of 3x3 conv (128 filters), ReLU,
    BatchNorm and max-pooling -> 50 tag logits (`layer="tags"`). `layer="pool3"` (or pool1..pool5): that block's
    output averaged over time, (batch, bands x 128) in TensorFlow's (band, filter) order; it stops there, so
    pool3 costs three blocks."""

    def __init__(self, n_tags: int = 50):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.blocks = nn.ModuleList(
            _ConvBN(nn.Conv2d(1 if i == 0 else VGG_FILTERS, VGG_FILTERS, 3, padding=1,
                              stride=VGG_FIRST_CONV_STRIDE if i == 0 else 1), VGG_FILTERS)
            for i in range(len(VGG_POOLS)))
        self.tags = nn.Linear(VGG_BANDS[-1] * 2 * VGG_FILTERS, n_tags)  # 2 x 1 positions left of 187 x 96

    def forward(self, mel: torch.Tensor, layer: str = "pool3") -> torch.Tensor:
        x = self.input_bn(mel[:, None])  # (batch, 1, frames, 96)
        for i, (block, pool) in enumerate(zip(self.blocks, VGG_POOLS), start=1):
            stride = VGG_FIRST_POOL_STRIDE if i == 1 else pool
            x = block.max_pooled(x, partial(_channels_last_max_pool, kernel_size=pool, stride=stride))
            if layer == f"pool{i}":
                return x.mean(dim=2).transpose(1, 2).flatten(1)
        return self.tags(F.dropout(x.permute(0, 2, 3, 1).flatten(1), 0.5, self.training))


NOISE_FLOOR_SEED = 0  # the one white noise every window gets with `EncoderBranch(noise_db=...)`


def noise_floor(n: int, level_db: float) -> torch.Tensor:
    """The same n samples of white noise at an RMS of `level_db` dBFS, for every window and every run."""
    return torch.randn(n, generator=torch.Generator().manual_seed(NOISE_FLOOR_SEED)) * 10 ** (level_db / 20)


class EncoderBranch(nn.Module):
    """The classifier's fixed branch: waveforms -> log-mel -> one layer of each named network, concatenated.

    `spec` names them joined by "+", each `<weights>[/<layer>]`: "MSD_musicnn/pooled+MTT_vgg/pool3"; musicnn's
    default layer is its penultimate, the VGG's pool3. "harmonics" joins irmas.harmonics' profile of the
    waveform (no weights). Held fixed, so it is always in eval mode (BatchNorm statistics included); training
    may fine-tune a musicnn's two upper mid-end convolutions (`upper_midend_parameters`, `with_midend`).

    `noise_db`: every window is heard over the same white noise at this level (dBFS RMS; windows peak at 1). The
    log-mel hears the quantisation noise of an 8-bit file (about -52 dBFS) or of a 16-bit one recorded at
    -60 dBFS (about -41 dBFS) in its quiet upper bands, where float audio has none, and the networks' answers
    moved with it; over a louder floor that every file shares, such files sound like their float originals.
    """

    def __init__(self, spec: str, sample_rate: int, noise_db: float | None = None):
        super().__init__()
        self.noise_db = noise_db
        self.parts = parse_encoder(spec)
        self.front_end = MelFrontEnd(sample_rate)
        self.networks = nn.ModuleList(HarmonicProfile(sample_rate) if weights == HARMONICS else load_musicnn(weights)
                                      for weights, _ in self.parts)
        self.requires_grad_(False)
        self.dim = sum(LAYER_DIMS[layer] for _, layer in self.parts)

    def train(self, mode: bool = True) -> EncoderBranch:
        return super().train(False)

    def forward(self, waveforms: torch.Tensor, chunk: int, first_midend: bool = False):
        """(batch, dim) embeddings of 3 s windows, `chunk` windows per network call. `first_midend`: also each
        tunable network's first mid-end layer output, (batch, networks, 64, frames) in float16 (`with_midend`)."""
        with torch.no_grad():
            if self.noise_db is not None:
                waveforms = waveforms + noise_floor(waveforms.shape[-1], self.noise_db).to(waveforms)
            mel = self.front_end(waveforms)[:, :N_FRAMES] if any(w != HARMONICS for w, _ in self.parts) else None
            embeddings, firsts = [], []
            for net, (weights, layer) in zip(self.networks, self.parts):
                if weights == HARMONICS:
                    embeddings.append(net(waveforms))
                elif first_midend and self._tunable(net, layer):
                    pairs = [pooled_and_first_midend(net, part) for part in mel.split(chunk)]
                    embeddings.append(torch.cat([pooled for pooled, _ in pairs]))
                    firsts.append(torch.cat([first for _, first in pairs]).half())
                else:
                    embeddings.append(torch.cat([net(part, layer=layer) for part in mel.split(chunk)]))
            encoded = torch.cat(embeddings, dim=1)
            if not first_midend:
                return encoded
            if not firsts:
                raise ValueError(f"no network of encoder {self.parts} has a mid-end to tune: name a musicnn's /pooled")
            return encoded, torch.stack(firsts, dim=1)

    @staticmethod
    def _tunable(net: nn.Module, layer: str) -> bool:
        return isinstance(net, Musicnn) and layer == "pooled"

    def tunable_midends(self) -> list[tuple[Musicnn, slice]]:
        """The networks whose upper mid-end training may fine-tune (musicnn's pooled layer; the rest of the branch
        stays fixed), each with where its mid-end numbers lie in the branch's embedding."""
        out, offset = [], 0
        for net, (_, layer) in zip(self.networks, self.parts):
            if self._tunable(net, layer):
                out.append((net, slice(offset + MIDEND_POOLED.start, offset + MIDEND_POOLED.stop)))
            offset += LAYER_DIMS[layer]
        return out

    def upper_midend_parameters(self) -> list[nn.Parameter]:
        """The convolutions of each tunable network's second and third mid-end layers (their BatchNorms stay)."""
        return [p for net, _ in self.tunable_midends() for layer in net.midend[1:] for p in layer.conv.parameters()]

    def with_midend(self, encoded: torch.Tensor, first_midend: torch.Tensor) -> torch.Tensor:
        """`encoded` with each tunable network's mid-end numbers computed again from its first mid-end layer's output
        (`forward(..., first_midend=True)`) through the layers as they are now: training's way to fine-tune them
        without running the front end, whose output it cannot afford to keep."""
        parts, start = [], 0
        for (net, where), first in zip(self.tunable_midends(), first_midend.unbind(dim=1)):
            parts += [encoded[:, start:where.start], midend_pooled(net, first)]
            start = where.stop
        return torch.cat([*parts, encoded[:, start:]], dim=1)


def parse_encoder(spec: str) -> list[tuple[str, str]]:
    """"MSD_musicnn/pooled+MTT_vgg" -> [("MSD_musicnn", "pooled"), ("MTT_vgg", "pool3")]; ValueError if unknown."""
    parts = []
    for part in spec.split("+"):
        if part == HARMONICS:
            parts.append((HARMONICS, "profile"))
            continue
        weights, _, layer = part.partition("/")
        vgg = weights.endswith("_vgg")
        layer = layer or ("pool3" if vgg else "penultimate")
        allowed = [f"pool{i}" for i in range(1, len(VGG_POOLS) + 1)] if vgg else ["penultimate", "pooled"]
        if weights not in WEIGHTS_SHA256 or layer not in allowed:
            raise ValueError(f"encoder {part!r}: choose weights from {sorted(WEIGHTS_SHA256)}, with "
                             f"/{' or /'.join(allowed)} for {'the VGG' if vgg else 'musicnn'}, or {HARMONICS!r}")
        parts.append((weights, layer))
    return parts


def network_version(name: str) -> str:
    """sha256 of what turns a waveform into network `name`'s embeddings: its weights, and the code and constants
    of the front end and the networks (not `EncoderBranch`'s plumbing). Caches of embeddings are keyed to it."""
    code = [inspect.getsource(part) for part in (mel_filterbank, MelFrontEnd, _ConvBN, live_filters,
                                                  _max_over_frequency, Musicnn, _channels_last_max_pool, Vgg)]
    constants = (SAMPLE_RATE, N_FFT, HOP, N_MELS, N_FRAMES, BN_EPS, DEAD_WEIGHT, TIMBRAL, TEMPORAL, MIDEND, VGG_FILTERS,
                 VGG_POOLS, VGG_FIRST_CONV_STRIDE, VGG_FIRST_POOL_STRIDE, soxr.__version__)
    return hashlib.sha256("\n".join([WEIGHTS_SHA256[name], repr(constants), *code]).encode()).hexdigest()


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.safetensors"


def load_musicnn(name: str = "MTT_musicnn") -> Musicnn | Vgg:
    """The converted published weights, checked against their sha256 (eval mode); "*_vgg" is a `Vgg`."""
    if name not in WEIGHTS_SHA256:
        raise ValueError(f"unknown musicnn weights {name!r}; choose from {sorted(WEIGHTS_SHA256)}")
    path = weights_path(name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256[name]:
        raise ValueError(f"{path}: sha256 {digest} is not the converted weights' {WEIGHTS_SHA256[name]}")
    model = Vgg() if name.endswith("_vgg") else Musicnn()
    model.load_state_dict(load_file(path))
    return model.eval()
