"""Do 8-bit, quietly recorded 16-bit and noisy files of an excerpt get the answer its float file gets?

Each excerpt is written as a file of each kind (soundfile), read back as the app reads files, and predicted by
the bundled model. A 32-bit float file at -60 dBFS is the control: prediction normalises the level, so it must
agree everywhere. The noisy copy has pink noise mixed in at 20 dB under the excerpt's RMS, as a room or a laptop
microphone adds it. Uses the rendered test excerpts that are on this machine (`bench accuracy` renders TimGM6mb's).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from irmas.data.layouts import read_layout
from irmas.evaluate import multi_label_metrics
from irmas.hub import load_model
from irmas.predict import predict_file

from .common import table

# copy -> (soundfile subtype, peak level in dBFS, signal-to-noise ratio in dB of added pink noise or None)
COPIES = {"float, -60 dBFS (control)": ("FLOAT", -60.0, None), "8-bit, -1 dBFS": ("PCM_U8", -1.0, None),
          "16-bit, -60 dBFS": ("PCM_16", -60.0, None), "16-bit, pink noise at 20 dB SNR": ("PCM_16", -1.0, 20.0)}


def pink_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Noise of power 1/f (per channel, along the first axis), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(shape), axis=0)
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1)).reshape(-1, *[1] * (len(shape) - 1))
    noise = np.fft.irfft(spectrum, shape[0], axis=0)
    return noise / np.sqrt(np.mean(noise ** 2))
SETS = [("FluidR3_GM (trained on)", Path("data/synth/FluidR3_GM/test")),
        ("real recorded notes (trained on)", Path("data/synth/samples/test")),
        ("TimGM6mb (held out)", Path("data/bench/TimGM6mb/test"))]


def run(sets: list[tuple[str, Path]] = SETS, per_set: int = 60) -> str:
    model = load_model(None).model
    labels = list(model.labels)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in sets:
            if not folder.is_dir():
                continue
            examples = read_layout(folder)[1][:per_set]
            targets = np.array([[code in ex.labels for code in labels] for ex in examples], dtype=np.int64)
            originals = [predict_file(model, ex.path) for ex in examples]
            float_f1 = multi_label_metrics(np.stack([p.probabilities for p in originals]), targets, labels,
                                           model.threshold)["micro_f1"]
            for copy, (subtype, level_db, snr_db) in COPIES.items():
                same, changes, probabilities = 0, [], []
                for index, (ex, original) in enumerate(zip(examples, originals)):
                    audio, rate = sf.read(ex.path, dtype="float32")
                    if snr_db is not None:
                        noise = pink_noise(audio.shape, np.random.default_rng(index))
                        audio = audio + noise * np.sqrt(np.mean(audio ** 2)) * 10 ** (-snr_db / 20)
                    path = Path(tmp) / "copy.wav"
                    sf.write(path, audio / np.abs(audio).max() * 10 ** (level_db / 20), rate, subtype=subtype)
                    got = predict_file(model, path)
                    same += set(got.detected) == set(original.detected)
                    changes.append(np.abs(got.probabilities - original.probabilities).max())
                    probabilities.append(got.probabilities)
                f1 = multi_label_metrics(np.stack(probabilities), targets, labels, model.threshold)["micro_f1"]
                rows.append([name, len(examples), copy, f"{same / len(examples):.3f}", f"{np.mean(changes):.3f}",
                             f"{np.percentile(changes, 90):.3f}", f"{float_f1:.3f} -> {f1:.3f}"])
    return table(f"The float file's answer from other files of the same excerpt (threshold {model.threshold})", [
        "excerpts", "files", "copy", "same instruments", "mean largest change", "90th percentile",
        "micro F1 (float -> copy)"], rows)
