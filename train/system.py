"""The LightningModule: loss, augmentation, metrics and the two-phase optimiser around the irmas model.

Phase 1 (epochs < unfreeze_epoch): the towers' learning rate is 0 and their BatchNorm statistics are
held (eval mode), so they do not change while the fusion head learns at `head_lr`. Phase 2: towers and head
train from `finetune_lr` down a cosine (and the encoder's musicnn mid-end from `midend_lr`, where set). The
schedule is a function of the epoch, held in the scheduler's state, so every DDP process agrees and a resumed
run continues where it left off (no `requires_grad` toggling, which breaks under DDP and is forgotten on resume).
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MultilabelF1Score

from irmas.features import LOG_FLOOR
from irmas.model import (
    CNN14_CHANNELS,
    EMBED_DIM,
    FUSION_DIMS,
    FUSION_DROPOUT,
    SMALL_CHANNELS,
    TOWER_DROPOUT,
    InstrumentClassifier,
    load_panns_weights,
)

EQ_TERMS = 4  # cosines over log frequency in the random equaliser: up to 2 peaks or dips
EQ_LOW_HZ = 50.0
LOWPASS_CORNER_HZ = (500.0, 4000.0)  # the random low-pass's corner, drawn on a log scale


class InstrumentSystem(L.LightningModule):
    def __init__(
        self,
        tower_channels: list[int] = list(SMALL_CHANNELS),
        fusion_dims: list[int] = list(FUSION_DIMS),
        fusion_dropout: list[float] = list(FUSION_DROPOUT),
        tower_dropout: float = TOWER_DROPOUT,
        embed_dim: int = EMBED_DIM,
        threshold: float = 0.5,
        panns_checkpoint: str | None = None,
        unfreeze_epoch: int = 4,
        head_lr: float = 3e-3,
        finetune_lr: float = 2e-4,
        weight_decay: float = 2e-4,
        mix_prob: float = 0.0,
        max_mixed: int = 1,
        pitch_shift: float = 0.0,
        eq_db: float = 0.0,
        lowpass_prob: float = 0.0,
        lowpass_slope: float = 12.0,
        spec_masks: int = 0,
        time_pool: int = 1,
        label_smoothing: float = 0.0,
        quantize_prob: float = 0.0,
        gain_db: float = 0.0,
        encoder: str | None = None,
        encoder_noise_db: float | None = None,
        tower_branch_dropout: float = 0.0,
        encoder_branch_dropout: float = 0.0,
        encoder_dropout: float = 0.0,
        freq_mixstyle: float = 0.0,
        freq_mixstyle_alpha: float = 0.4,
        consistency: float = 0.0,
        midend_lr: float = 0.0,
    ):
        """`panns_checkpoint`: "auto" downloads Cnn14_mAP=0.431.pth, a path uses that file, None starts
        from scratch. `mix_prob`: share of clips mixed with another (multi-label target). `pitch_shift`:
        max relative resampling of a batch (0.06 = about one semitone). `spec_masks`: SpecAugment masks
        per band and axis. `lowpass_prob`: share of clips darkened by a random low-pass of up to
        `lowpass_slope` dB per octave. Augmentation is off by default: on rendered data mixing, resampling,
        SpecAugment and the equaliser lowered cross-bank accuracy, and the low-pass moved it less than seeds
        do (README, Training). `time_pool`: frames the towers average into one (their cost divides by it).
        `label_smoothing`: training targets move this far towards 0.5 (0.1: present 0.95, absent 0.05).
        `quantize_prob`: share of clips stored again as an 8-bit file or a quiet (-30 to -66 dBFS) 16-bit one.
        `gain_db`: each clip is played 0 to this many dB quieter (uniform), as a window of a file is quieter than
        the file's peak, to which prediction normalises; the encoder's cached embeddings are of the clip as stored.
        `encoder`: the fixed fourth branch (irmas.model); batches then carry its embeddings (train.data), computed
        once from the clips before augmentation; `encoder_noise_db`: the noise floor it hears them over
        (irmas.musicnn.EncoderBranch). `tower_branch_dropout`: share of training clips whose three
        towers' embeddings are zeroed, so the fusion also learns to name instruments from the encoder alone.
        `encoder_branch_dropout`: the other way round, the share of clips whose encoder embedding is zeroed, so
        the towers learn to name instruments without it.
        `encoder_dropout`: dropout on the encoder's fixed embedding in training (the fusion's input from it),
        so the head leans on no few of its features.
        `freq_mixstyle`: share of clips whose per-frequency level and spread (over time) are mixed with another
        clip's (`freq_mixstyle_alpha`: the Beta law of the mixing weight), towers only (`freq_mix_style`).
        `consistency`: weight of a loss that pulls the output on a clip stored as an 8-bit or quiet 16-bit file
        towards the output on its float original (both with the same towers; batches then carry the encoder's
        embedding of the original, train.data's `float_embeddings`). The towers hear such files as they hear the
        float ones; the encoder does not, and its labels alone did not teach the fusion to ignore the difference.
        `midend_lr`: learning rate in phase 2 of the two upper mid-end convolutions of the encoder's musicnn (a
        `/pooled` part), under the same cosine; the rest of the branch stays fixed. Batches then carry each clip's
        first mid-end layer output (train.data's `midend_inputs`), from which those layers' part of the cached
        embedding is computed again every step (irmas.musicnn.EncoderBranch.with_midend). 0: the branch is fixed."""
        super().__init__()
        self.save_hyperparameters()
        self.model = InstrumentClassifier(tower_channels=tower_channels, embed_dim=embed_dim,
                                          fusion_dims=fusion_dims, fusion_dropout=fusion_dropout,
                                          tower_dropout=tower_dropout, threshold=threshold,
                                          time_pool=time_pool, encoder=encoder,
                                          encoder_noise_db=encoder_noise_db)
        if encoder and mix_prob > 0:
            raise ValueError("mix_prob needs the encoder's embedding of each mixture: use mix_prob 0 with an encoder")
        if consistency and not encoder:
            raise ValueError("consistency compares two embeddings of the encoder: it needs an encoder")
        if midend_lr:
            if not (self.model.encoder and self.model.encoder.tunable_midends()):
                raise ValueError("midend_lr fine-tunes a musicnn's mid-end: the encoder needs a musicnn's /pooled")
            if consistency:
                raise ValueError("midend_lr and consistency each need the batches' fourth tensor: use one of them")
            for p in self.model.encoder.upper_midend_parameters():
                p.requires_grad_(True)
        if (tower_branch_dropout or encoder_branch_dropout or encoder_dropout) and not encoder:
            raise ValueError("tower_branch_dropout, encoder_branch_dropout and encoder_dropout act on the "
                             "encoder's embedding: each needs an encoder")
        if panns_checkpoint:
            from .panns import fetch_panns

            path = fetch_panns(None if panns_checkpoint == "auto" else panns_checkpoint)
            report = load_panns_weights(self.model, path)
            print(report.summary())
        n = len(self.model.labels)
        self.val_metrics = MetricCollection({
            "accuracy": MulticlassAccuracy(n, average="micro"),
            "macro_f1": MulticlassF1Score(n, average="macro"),
            "multilabel_micro_f1": MultilabelF1Score(n, threshold=threshold, average="micro"),
        }, prefix="val/")

    # ------------------------------------------------------------------ augmentation
    def augment(self, waves: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch-level: resample (pitch+tempo), circular time shift, mixing pairs of clips, quantisation, level."""
        hp = self.hparams
        b, n = waves.shape
        if hp.pitch_shift > 0:
            factor = 1.0 + (torch.rand(()).item() * 2 - 1) * hp.pitch_shift
            stretched = F.interpolate(waves[:, None], scale_factor=factor, mode="linear", align_corners=False)[:, 0]
            waves = stretched[:, :n] if stretched.shape[1] >= n else F.pad(stretched, (0, n - stretched.shape[1]))
        # each clip starts at a random sample and wraps around (a roll per clip: a gather over the batch
        # with its index arithmetic took ~3% of a training step)
        shifts = torch.randint(0, n, (b,), device=waves.device)
        waves = torch.stack([clip.roll(-shift) for clip, shift in zip(waves, shifts.tolist())])
        if hp.mix_prob > 0:
            # each clip draws how many others join it (0 with 1 - mix_prob), each 0..6 dB quieter
            mixed, labels = waves.clone(), targets
            joined = torch.where(torch.rand(b, device=waves.device) < hp.mix_prob,
                                 torch.randint(1, hp.max_mixed + 1, (b,), device=waves.device), 0)
            for k in range(hp.max_mixed):
                partner = torch.randperm(b, device=waves.device)
                take = (joined > k).float()[:, None]
                gain = 10 ** (-6 * torch.rand(b, 1, device=waves.device) / 20)
                mixed = mixed + take * gain * waves[partner]
                targets = torch.maximum(targets, take * labels[partner])
            waves = mixed / mixed.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
        if hp.quantize_prob > 0:
            waves = self.quantize(waves)
        if hp.gain_db > 0:
            waves = waves * 10 ** (-hp.gain_db * torch.rand(b, 1, device=waves.device) / 20)
        return waves, targets

    def quantize(self, waves: torch.Tensor) -> torch.Tensor:
        """Store a share of the clips as an 8-bit file (at -6..0 dBFS) or a 16-bit one recorded quietly
        (-66..-30 dBFS: a few dozen sample values), then peak-normalise them as prediction does. The
        quantisation noise floor is then as loud against the music as it is in such files."""
        b = waves.shape[0]
        on = torch.rand(b, 1, device=waves.device) < self.hparams.quantize_prob
        eight_bit = torch.rand(b, 1, device=waves.device) < 0.5
        level_db = torch.where(eight_bit, -6 * torch.rand(b, 1, device=waves.device),
                               -30 - 36 * torch.rand(b, 1, device=waves.device))
        steps = torch.where(eight_bit, torch.tensor(128.0), torch.tensor(32768.0)) * 10 ** (level_db / 20)
        stored = torch.round(waves * steps)
        stored = stored / stored.abs().amax(dim=1, keepdim=True).clamp_min(1.0)
        return torch.where(on, stored, waves)

    def filter_bands(self, bands: list[torch.Tensor], curve_db) -> list[torch.Tensor]:
        """Every band of each clip plus a gain curve: `curve_db(hz)` maps the bins' centre frequencies to
        (batch, bins) dB. A log-magnitude spectrogram plus a curve is the clip through that filter."""
        out = []
        for i, spec in enumerate(bands):
            hz = self.model.features.frequencies(i).to(spec.device)
            out.append(spec + curve_db(hz)[:, None, :] * (math.log(10) / 20))  # dB -> natural-log magnitude
        return out

    def random_eq(self, bands: list[torch.Tensor]) -> list[torch.Tensor]:
        """Add one smooth random curve over log frequency (up to +-eq_db) to every band of a clip: the same
        note from another instrument maker, microphone or room, which is what an unheard sound bank sounds like.
        """
        first = bands[0]
        coeffs = torch.randn(first.shape[0], 1, EQ_TERMS, device=first.device)
        coeffs = coeffs / coeffs.abs().sum(dim=2, keepdim=True) * torch.rand(first.shape[0], 1, 1, device=first.device)
        k = torch.arange(1, EQ_TERMS + 1, device=first.device)

        def curve_db(hz: torch.Tensor) -> torch.Tensor:
            position = torch.log(hz.clamp_min(EQ_LOW_HZ) / EQ_LOW_HZ) / math.log(self.model.sample_rate / 2 / EQ_LOW_HZ)
            return self.hparams.eq_db * (coeffs * torch.cos(math.pi * k * position[:, None])).sum(dim=2)

        return self.filter_bands(bands, curve_db)

    def random_lowpass(self, bands: list[torch.Tensor]) -> list[torch.Tensor]:
        """Darken a share of the clips: 0 to `lowpass_slope` dB per octave above a random corner.

        Instruments are darker when played softly, from further away or through duller samples; a bank whose
        samples all sound bright (FluidR3_GM's pianos have one timbre at every velocity) teaches none of it.
        """
        first = bands[0]
        b, device = first.shape[0], first.device
        on = (torch.rand(b, 1, device=device) < self.hparams.lowpass_prob).float()
        low, high = LOWPASS_CORNER_HZ
        corner = low * (high / low) ** torch.rand(b, 1, device=device)
        slope = on * self.hparams.lowpass_slope * torch.rand(b, 1, device=device)
        darker = self.filter_bands(bands, lambda hz: -slope * torch.log2(hz / corner).clamp_min(0.0))
        return [spec.clamp_min(math.log(LOG_FLOOR)) for spec in darker]  # no quieter than the STFT's floor

    def freq_mix_style(self, bands: list[torch.Tensor]) -> list[torch.Tensor]:
        """Freq-MixStyle (Kim et al. 2022; CP-JKU's DCASE systems, for recording devices never heard): each
        frequency bin of a share of the clips is normalised by its own mean and spread over time and given a
        mix of those and another clip's. A clip's lasting spectral colour (a bank's, a microphone's) then stops
        naming the instrument; what changes within the clip keeps doing so. One partner and weight per clip
        for all three bands, so the bands stay one recording."""
        first = bands[0]
        b, device = first.shape[0], first.device
        partner = torch.randperm(b, device=device)
        alpha = torch.tensor(self.hparams.freq_mixstyle_alpha, device=device)
        weight = torch.distributions.Beta(alpha, alpha).sample((b, 1, 1))
        on = (torch.rand(b, 1, 1, device=device) < self.hparams.freq_mixstyle).to(first.dtype)
        weight = on * weight + (1 - on)  # 1: the clip's own statistics
        out = []
        for spec in bands:
            mean = spec.mean(dim=1, keepdim=True).detach()
            std = (spec.var(dim=1, keepdim=True) + 1e-6).sqrt().detach()
            normed = (spec - mean) / std
            mixed_mean = weight * mean + (1 - weight) * mean[partner]
            mixed_std = weight * std + (1 - weight) * std[partner]
            out.append(normed * mixed_std + mixed_mean)
        return out

    def spec_augment(self, bands: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for spec in bands:
            spec = spec.clone()
            b, frames, bins = spec.shape
            floor = spec.amin(dim=(1, 2), keepdim=True)
            for _ in range(self.hparams.spec_masks):
                for axis, size, width in ((1, frames, frames // 8), (2, bins, max(1, bins // 8))):
                    w = torch.randint(0, width + 1, (b, 1, 1), device=spec.device)
                    start = (torch.rand(b, 1, 1, device=spec.device) * (size - w)).long()
                    pos = torch.arange(size, device=spec.device).view((1, -1, 1) if axis == 1 else (1, 1, -1))
                    spec = torch.where((pos >= start) & (pos < start + w), floor, spec)
            out.append(spec)
        return out

    # ------------------------------------------------------------------ steps
    def setup(self, stage: str) -> None:
        # Channels-last convs train about a fifth faster on CPU (oneDNN). Set here, before DDP wraps the
        # model and the optimiser is built; a model loaded from a checkpoint has the usual layout again,
        # so export and inference see ordinary tensors.
        if stage == "fit":
            self.model.to(memory_format=torch.channels_last)

    def on_train_epoch_start(self) -> None:
        # Phase 1 holds the towers' BatchNorm statistics and dropout; both modes are set every epoch
        # because Lightning restores each module's previous mode after validation.
        self.model.towers.train(self.current_epoch >= self.hparams.unfreeze_epoch)

    def training_loss(self, batch) -> torch.Tensor:
        """Augment, compute features, mask them, classify: the loss of one training batch."""
        waves, targets = self.augment(*batch[:2])
        bands = self.model.features(waves)
        if self.hparams.eq_db:
            bands = self.random_eq(bands)
        if self.hparams.lowpass_prob:
            bands = self.random_lowpass(bands)
        if self.hparams.spec_masks:
            bands = self.spec_augment(bands)
        if self.hparams.freq_mixstyle:
            bands = self.freq_mix_style(bands)
        targets = targets * (1 - self.hparams.label_smoothing) + self.hparams.label_smoothing / 2
        keep = None
        if self.hparams.tower_branch_dropout:
            keep = (torch.rand(len(targets), device=targets.device) >= self.hparams.tower_branch_dropout).float()
        encoded = self._encoded(batch)
        paired = None  # (which clips were stored coarsely, the encoder's embedding of their originals)
        if self.hparams.consistency and len(batch) > 3:
            changed = (batch[3] != encoded).any(dim=1)
            paired = (changed, batch[3][changed])
            encoded = torch.cat([encoded, paired[1]])
        if encoded is not None and self.hparams.encoder_dropout:
            encoded = F.dropout(encoded, self.hparams.encoder_dropout)
        if encoded is not None and self.hparams.encoder_branch_dropout:
            drop = torch.rand(len(targets), device=targets.device) < self.hparams.encoder_branch_dropout
            if paired is not None:
                drop = torch.cat([drop, drop[paired[0]]])
            encoded = encoded.masked_fill(drop[:, None], 0.0)
        towers = self.model.embed_bands(bands, tower_keep=keep)
        if paired is None:
            return F.binary_cross_entropy_with_logits(self.model.fuse(towers, encoded), targets)
        # one pass of the fusion over the clips and the originals (one set of BatchNorm statistics)
        logits, original = self.model.fuse(torch.cat([towers, towers[paired[0]]]), encoded).split(
            [len(targets), int(paired[0].sum())])
        # the originals learn their labels too: a pull towards an output that lags behind the labels held the
        # coarse files' outputs back instead of bringing the two together
        loss = F.binary_cross_entropy_with_logits(torch.cat([logits, original]),
                                                  torch.cat([targets, targets[paired[0]]]))
        if len(original):
            pulled = F.binary_cross_entropy_with_logits(logits[paired[0]], torch.sigmoid(original).detach(),
                                                        reduction="sum") / targets.numel()
            loss = loss + self.hparams.consistency * pulled
        return loss

    def _encoded(self, batch) -> torch.Tensor | None:
        """The encoder branch's embeddings: the batch's own (train.data), with the mid-end's part computed again
        where it is being fine-tuned, else computed now."""
        if self.model.encoder is None:
            return None
        if len(batch) <= 2:
            return self.model.encode(batch[0])
        return self.model.encoder.with_midend(batch[2], batch[3]) if self.hparams.midend_lr else batch[2]

    def training_step(self, batch, batch_idx):
        loss = self.training_loss(batch)
        waves = batch[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True,
                 batch_size=len(waves))
        return loss

    def validation_step(self, batch, batch_idx):
        waves, targets = batch[:2]
        logits = self.model.classify(self.model.features(waves), self._encoded(batch))
        self.log("val/loss", F.binary_cross_entropy_with_logits(logits, targets), prog_bar=True, sync_dist=True,
                 batch_size=len(waves))
        probs = torch.sigmoid(logits)
        for name, metric in self.val_metrics.items():
            metric.update(probs, targets.long() if "multilabel" in name else targets.argmax(dim=1))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=True, sync_dist=True)
        self.val_metrics.reset()

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the RNG state (augmentation, dropout, shuffling) so a resumed run repeats the same draws,
        and every validation score of this epoch, for the model card. Rank 0's state serves every DDP
        process: all are seeded alike and draw the same numbers (for different clips)."""
        checkpoint["validation"] = {k: round(float(v), 4) for k, v in self.trainer.callback_metrics.items()
                                    if k.startswith("val/")}
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get("rng_states")
        if states:
            torch.set_rng_state(states["torch"])
            if "cuda" in states and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])

    def configure_optimizers(self):
        hp = self.hparams
        towers, head = self.model.tower_parameters(), self.model.head_parameters()
        groups = [{"params": towers, "lr": hp.finetune_lr}, {"params": head, "lr": hp.head_lr}]
        if hp.midend_lr:
            groups.append({"params": self.model.encoder_parameters(), "lr": hp.midend_lr})
        optimizer = torch.optim.Adam(groups, weight_decay=hp.weight_decay)
        unfreeze, last = hp.unfreeze_epoch, max(hp.unfreeze_epoch + 1, self.trainer.max_epochs or 1)

        def decay(epoch: int) -> float:
            return phase2_decay(epoch, unfreeze, last)

        held_in_phase1 = lambda epoch: 0.0 if epoch < unfreeze else decay(epoch)  # noqa: E731
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, [
            held_in_phase1,
            lambda epoch: 1.0 if epoch < unfreeze else decay(epoch) * hp.finetune_lr / hp.head_lr,
        ] + [held_in_phase1] * bool(hp.midend_lr))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}


def phase2_decay(epoch: int, unfreeze: int, last: int) -> float:
    """Learning-rate factor in phase 2: a cosine from 1 to 0.02 over epochs `unfreeze`..`last` - 1, so the last
    epochs settle instead of jumping."""
    progress = (epoch - unfreeze) / max(1, last - unfreeze - 1)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


__all__ = ["InstrumentSystem", "CNN14_CHANNELS", "phase2_decay"]
