"""The instrument classifier: one PANNs-style CNN tower per STFT band, an MLP fusing them, 11 outputs.

The model takes waveforms, so a saved model is all anyone needs to run it (no pre-computed features).
Its constructor arguments are its config: PyTorchModelHubMixin writes them to config.json beside
model.safetensors, and they carry the labels, sample rate and band table the weights were trained with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .audio import SAMPLE_RATE
from .features import BANDS, ThreeBandSTFT
from .labels import CODES
from .musicnn import EncoderBranch

CNN14_CHANNELS = (64, 128, 256, 512, 1024, 2048)  # PANNs Cnn14: the full-size tower
# the CPU setting of the bundled model: 0.40 GFLOP per window at full frame rate (0.10 at time_pool 4), CNN14 29.6
SMALL_CHANNELS = (8, 16, 32, 64, 128)
EMBED_DIM = 512  # each tower's output, so the fusion input is 3 x 512
FUSION_DIMS = (768, 512)
FUSION_DROPOUT = (0.4, 0.3)
TOWER_DROPOUT = 0.2  # after each conv block, as in PANNs
DEFAULT_THRESHOLD = 0.5
ENCODER_CPU_BATCH = 2  # windows per encoder call on a CPU (see InstrumentClassifier.encode)


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then 2x2 average pooling; names match PANNs so its weights load."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool != (1, 1) else x


class Tower(nn.Module):
    """PANNs Cnn14 body for one band: (batch, frames, bins) -> (batch, EMBED_DIM) embedding.

    As in Cnn14, the last block does not pool, features are averaged over frequency, then max + mean
    over time, then `fc1`; a linear `embed` maps the tower width to the common fusion width.
    `time_pool` > 1 first averages that many frames (4: 46 ms steps): which instrument plays is a matter
    of timbre, not of 12 ms timing, and the convolutions then cost that many times less.
    """

    def __init__(self, n_bins: int, channels: tuple[int, ...], embed_dim: int = EMBED_DIM,
                 dropout: float = TOWER_DROPOUT, time_pool: int = 1):
        super().__init__()
        self.dropout = dropout
        self.time_pool = time_pool
        self.bn0 = nn.BatchNorm2d(n_bins)  # per-bin input normalisation, as PANNs' bn0 over mel bins
        widths = (1, *channels)
        self.blocks = nn.ModuleList(ConvBlock(widths[i], widths[i + 1]) for i in range(len(channels)))
        self.fc1 = nn.Linear(channels[-1], channels[-1])
        self.embed = nn.Linear(channels[-1], embed_dim)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = spec.unsqueeze(1)  # (batch, 1, frames, bins)
        if self.time_pool > 1:
            x = F.avg_pool2d(x, (self.time_pool, 1), ceil_mode=True)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, (1, 1) if i == last else (2, 2))
            if self.dropout:
                x = F.dropout(x, p=self.dropout, training=self.training)
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu(self.fc1(x))
        return self.embed(x)


class InstrumentClassifier(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="irmas",
    tags=["audio-classification", "musical-instrument-recognition", "irmas"],
    pipeline_tag="audio-classification",
    license="mit",
):
    """Waveforms at `sample_rate` (batch, samples) -> logits (batch, len(labels)); sigmoid per label."""

    def __init__(
        self,
        tower_channels: list[int] = list(SMALL_CHANNELS),
        embed_dim: int = EMBED_DIM,
        fusion_dims: list[int] = list(FUSION_DIMS),
        fusion_dropout: list[float] = list(FUSION_DROPOUT),
        tower_dropout: float = TOWER_DROPOUT,
        labels: list[str] = list(CODES),
        sample_rate: int = SAMPLE_RATE,
        bands: list[dict] = [dict(b) for b in BANDS],
        threshold: float = DEFAULT_THRESHOLD,
        time_pool: int = 1,
        encoder: str | None = None,
        encoder_noise_db: float | None = None,
    ):
        """`encoder`: networks pretrained on real music whose embeddings of the same waveform join the fusion
        input as a fourth branch, held fixed (irmas.musicnn.EncoderBranch): "MSD_musicnn" is musicnn's 200-d
        penultimate layer, "MSD_musicnn/pooled" its 1,506 pooled front- and mid-end features, "MTT_vgg/pool3"
        the VGG's third block (1,536); "+" joins several, "MSD_musicnn/pooled+MTT_vgg/pool3". `encoder_noise_db`: the
        white noise floor every window gets before the encoder hears it (EncoderBranch's `noise_db`); None: none."""
        super().__init__()
        self.labels = list(labels)
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.features = ThreeBandSTFT(bands, sample_rate)
        self.towers = nn.ModuleList(
            Tower(last - first, tuple(tower_channels), embed_dim, tower_dropout, time_pool)
            for first, last in self.features.bins
        )
        self.encoder_name = encoder
        self.encoder = EncoderBranch(encoder, sample_rate, encoder_noise_db) if encoder else None
        width = embed_dim * len(self.towers) + (self.encoder.dim if self.encoder else 0)
        self._register_load_state_dict_pre_hook(_one_network_keys)
        layers: list[nn.Module] = []
        for dim, p in zip(fusion_dims, fusion_dropout):
            layers += [nn.Linear(width, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Dropout(p)]
            width = dim
        self.fusion = nn.Sequential(*layers)
        self.head = nn.Linear(width, len(self.labels))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        bands = self.features(waveforms)
        return self.classify(bands, self.encode(waveforms) if self.encoder is not None else None)

    def encode(self, waveforms: torch.Tensor, first_midend: bool = False):
        """The encoder branch's embedding (batch, encoder.dim) of 3 s windows; `first_midend`: and what training
        fine-tunes its mid-end from (EncoderBranch.forward)."""
        # On a CPU, two windows at a time: a window's front-end activations (9 MB) outgrow the caches in larger
        # batches, which then cost up to 1.6x as much per window.
        chunk = ENCODER_CPU_BATCH if waveforms.device.type == "cpu" else max(1, len(waveforms))
        return self.encoder(waveforms, chunk, first_midend)

    def classify(self, bands: list[torch.Tensor], encoded: torch.Tensor | None = None,
                 tower_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from band spectrograms and, with an encoder, its embedding (`encode`): training augments
        the spectrograms before the towers, and may compute the fixed embeddings once per clip. `tower_keep`
        (batch,) of 0/1, training only: clips at 0 reach the fusion through the encoder's embedding alone."""
        return self.fuse(self.embed_bands(bands, tower_keep), encoded)

    def embed_bands(self, bands: list[torch.Tensor], tower_keep: torch.Tensor | None = None) -> torch.Tensor:
        """The three towers' embeddings of the band spectrograms, side by side (batch, 3 * embed_dim)."""
        parts = [tower(spec) for tower, spec in zip(self.towers, bands)]
        if tower_keep is not None:
            parts = [part * tower_keep[:, None].to(part.dtype) for part in parts]
        return torch.cat(parts, dim=1)

    def fuse(self, towers: torch.Tensor, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from the towers' embeddings (`embed_bands`) and, with an encoder, its embedding: training fuses
        one clip's towers with two embeddings of the encoder (of a stored file and of its float original)."""
        if self.encoder is not None:
            if encoded is None:
                raise ValueError("this model has an encoder branch: pass its embedding (model.encode)")
            towers = torch.cat([towers, encoded], dim=1)
        return self.head(self.fusion(towers))

    def tower_parameters(self) -> list[nn.Parameter]:
        return [p for tower in self.towers for p in tower.parameters()]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """What of the encoder branch trains: nothing unless training set its upper mid-end's to (train.system)."""
        return [p for p in self.encoder.parameters() if p.requires_grad] if self.encoder is not None else []

    def head_parameters(self) -> list[nn.Parameter]:
        """Everything trainable that is not a tower or the encoder branch: fusion and output layer (trained from the
        first epoch)."""
        others = {id(p) for p in self.tower_parameters() + self.encoder_parameters()}
        return [p for p in self.parameters() if id(p) not in others and p.requires_grad]


def _one_network_keys(state_dict: dict, prefix: str, *args) -> None:
    """Models saved before the branch could hold several networks stored its one network as `encoder.*`;
    it is now `encoder.networks.0.*`."""
    old, new = prefix + "encoder.", prefix + "encoder.networks."
    for key in [k for k in state_dict if k.startswith(old) and not k.startswith(new)]:
        state_dict[new + "0." + key[len(old):]] = state_dict.pop(key)


def for_inference(model: InstrumentClassifier) -> InstrumentClassifier:
    """Eval mode, each conv's BatchNorm folded into the conv, channels-last weights; returns `model`.

    Same outputs (to ~1e-6), about a quarter less time per window on a CPU. The folded model is for
    running only: its state dict has no conv BatchNorm entries, so train and save the unfolded one.
    Also makes this process's CPU flush subnormal floats to zero: weights that training left subnormal cost
    Intel CPUs up to 80x as much time as normal ones, and as zeros change no probability.
    """
    torch.set_flush_denormal(True)
    model.eval()
    for tower in model.towers:
        for block in tower.blocks:
            if isinstance(block.bn1, nn.BatchNorm2d):
                block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), nn.Identity()
                block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), nn.Identity()
    # the towers only: musicnn's front end reduces over frequency, slow on a channels-last output
    model.towers.to(memory_format=torch.channels_last)
    return model


@dataclass
class WarmStartReport:
    """What `load_panns_weights` took from the checkpoint, per tower key, and why the rest was skipped."""

    used: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # tower parameters the checkpoint did not provide

    def summary(self) -> str:
        return (f"PANNs warm start: {len(self.used)} tensors loaded into towers, {len(self.skipped)} checkpoint "
                f"keys skipped, {len(self.missing)} tower tensors left at initialisation")


class CheckpointError(ValueError):
    """A file that is not a usable PANNs checkpoint."""


def load_panns_weights(model: InstrumentClassifier, checkpoint: str | os.PathLike) -> WarmStartReport:
    """Copy the conv blocks and fc1 of a PANNs Cnn14 checkpoint into every tower.

    The file is read with `weights_only=True`: a checkpoint from the internet never reaches pickle.
    Front-end keys (spectrogram/log-mel extractors, bn0 over 64 mel bins) and the AudioSet head do not
    fit our bands and classes, so they are skipped with a reason.
    """
    try:
        raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same sentence
        raise CheckpointError(f"{checkpoint}: not a readable PyTorch checkpoint ({err}).") from None
    state = raw.get("model", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or "conv_block1.conv1.weight" not in state:
        raise CheckpointError(f"{checkpoint}: no PANNs CNN weights (expected key 'conv_block1.conv1.weight').")

    report = WarmStartReport()
    for t, tower in enumerate(model.towers):
        target = tower.state_dict()
        loaded: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            ours = _panns_to_tower_key(key)
            if ours is None:
                report.skipped.setdefault(key, "front end or AudioSet head: not used by the towers")
            elif ours not in target:
                report.skipped.setdefault(key, f"this tower has no {ours} (fewer blocks)")
            elif target[ours].shape != value.shape:
                report.skipped.setdefault(
                    key, f"shape {tuple(value.shape)} does not fit {tuple(target[ours].shape)}")
            else:
                loaded[ours] = value
                report.used.append(f"towers.{t}.{ours}")
        tower.load_state_dict(loaded, strict=False)
        report.missing += [f"towers.{t}.{k}" for k in target if k not in loaded]
    return report


def _panns_to_tower_key(key: str) -> str | None:
    """`conv_block3.bn1.weight` -> `blocks.2.bn1.weight`; `fc1.bias` -> `fc1.bias`; else None."""
    if key.startswith("conv_block"):
        block, _, rest = key[len("conv_block"):].partition(".")
        return f"blocks.{int(block) - 1}.{rest}" if block.isdigit() else None
    if key.startswith("fc1."):
        return key
    return None
