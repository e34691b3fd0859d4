"""Model forward per 3 s window (batch 1 and 16) and end to end (file -> probabilities -> figures),
bundled model vs the same with (or without) the musicnn branch, with its branch's first network alone where it
joins several, and 3 x CNN14, on CPU (and GPU when present)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from irmas.audio import load_audio
from irmas.hub import load_model
from irmas.model import CNN14_CHANNELS, InstrumentClassifier, for_inference
from irmas.plots import band_spectrograms, probabilities_bar, timeline
from irmas.predict import predict_waveform

from .common import median_ms, table


def end_to_end(model, path: Path) -> None:
    waveform = load_audio(path)
    prediction = predict_waveform(model, waveform)
    probabilities_bar(prediction).to_json()
    band_spectrograms(model.features, waveform).to_json()
    timeline(prediction).to_json()


def run(repeat: int = 10, cnn14: bool = True) -> str:
    """`cnn14=False` leaves out the full-size model (a quarter of the run's time)."""
    bundled = load_model(None).model  # prepared by for_inference, as the app and CLI run it
    # the bundled towers with the encoder branch added, or without it when the bundled model has one (untrained
    # fusion: the cost is what is measured here)
    config = {k: getattr(bundled, k, None) for k in ("sample_rate", "threshold")}

    def like_bundled(encoder: str | None) -> InstrumentClassifier:
        return for_inference(InstrumentClassifier(
            tower_channels=[b.conv2.out_channels for b in bundled.towers[0].blocks],
            time_pool=bundled.towers[0].time_pool, encoder=encoder, **config))

    variant = "three bands only" if bundled.encoder is not None else "with musicnn branch"
    models = [("bundled", bundled), (variant, like_bundled(None if bundled.encoder else "MSD_musicnn/pooled"))]
    networks = bundled.encoder_name.split("+") if bundled.encoder is not None else []
    if len(networks) > 1:  # what the joined networks cost: the branch with its first network alone
        models.append((f"{networks[0]} only", like_bundled(networks[0])))
    if cnn14:
        models.append(("3 x CNN14", for_inference(InstrumentClassifier(tower_channels=list(CNN14_CHANNELS)))))
    rng = np.random.default_rng(0)
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        files = {}
        for seconds in (10, 60):
            files[seconds] = Path(tmp) / f"{seconds}s.wav"
            sf.write(files[seconds], 0.3 * rng.standard_normal((seconds * 44100, 2)), 44100)
        for device in devices:
            results = {}
            for name, model in models:
                model.to(device)
                x1, x16 = torch.randn(1, 66150, device=device), torch.randn(16, 66150, device=device)
                sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
                reps = repeat if name != "3 x CNN14" or device == "cuda" else max(3, repeat // 3)
                b1 = median_ms(lambda: (model(x1), sync()), reps)
                b16 = median_ms(lambda: (model(x16), sync()), reps) / 16
                e10 = median_ms(lambda: end_to_end(model, files[10]), reps)
                e60 = median_ms(lambda: end_to_end(model, files[60]), max(3, reps // 2))
                params = sum(p.numel() for p in model.parameters())
                results[name] = (b1, b16, e10, e60)
                rows.append([device, name, f"{params / 1e6:.1f} M", f"{b1:.1f}", f"{b16:.1f}", f"{e10:.0f}",
                             f"{e60:.0f}"])
                model.to("cpu")
            for name in results:
                if name != "bundled":
                    ratio = [results[name][i] / results["bundled"][i] for i in range(4)]
                    rows.append([device, f"ratio {name} / bundled", "", *(f"{r:.1f}x" for r in ratio)])
    return table("Inference (medians, ms)", ["device", "model", "params", "forward/window b1",
                                             "forward/window b16", "10 s end to end", "60 s end to end"], rows)
