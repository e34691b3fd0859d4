"""Convert musicnn's published TensorFlow checkpoints to safetensors, and record the original's outputs.

Run once, in an environment with TensorFlow 2 (CPU), librosa and safetensors, none of which the project needs:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install "tensorflow-cpu==2.15.*" librosa==0.10.2.post1 \
        "numpy<2" soundfile safetensors
    /tmp/tfenv/bin/python tools/convert_musicnn.py

It fetches the `musicnn` 0.1.0 wheel from PyPI (pip download; `--wheel` to use one already here), reads its
MTT_musicnn, MSD_musicnn, MTT_vgg and MSD_vgg checkpoints, writes `irmas/weights/<name>.safetensors` under the
PyTorch port's names (irmas.musicnn), prints their sha256 for WEIGHTS_SHA256, and runs the original TensorFlow graph
(musicnn's own models.py and its librosa front end) on the first 3 s of two of the app's examples. The
inputs and outputs go to `tests/data/musicnn_reference.npz`, which tests/test_musicnn.py checks the port
against without TensorFlow.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
CLIPS = ("cel_voi.ogg", "gel_tru.ogg")  # from examples/, at the classifier's 22,050 Hz
CLIP_RATE = 22050


def batch_norm(reader, out: dict[str, np.ndarray], ours: str, index: int) -> None:
    """TensorFlow's `batch_normalization[_<index>]` variables into `out` under the PyTorch BatchNorm `ours`."""
    name = "batch_normalization" + (f"_{index}" if index else "")
    for key, tf_key in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                        ("running_var", "moving_variance")):
        out[f"{ours}.{key}"] = reader.get_tensor(f"{name}/{tf_key}")
    out[f"{ours}.num_batches_tracked"] = np.array(0, dtype=np.int64)


def as_stored(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v.astype(np.int64 if v.dtype == np.int64 else np.float32)) for k, v in out.items()}


def state_dict(reader) -> dict[str, np.ndarray]:
    """TensorFlow variable names (in creation order) -> irmas.musicnn.Musicnn's state-dict names."""
    t = reader.get_tensor
    out: dict[str, np.ndarray] = {}

    def bn(ours: str, index: int) -> None:
        batch_norm(reader, out, ours, index)

    def conv(ours: str, index: int, one_d: bool) -> None:
        name = "conv2d" + (f"_{index}" if index else "")
        kernel = t(f"{name}/kernel")  # (height = time, width, in, out)
        out[f"{ours}.weight"] = kernel[:, :, 0, :].transpose(2, 1, 0) if one_d else kernel.transpose(3, 2, 0, 1)
        out[f"{ours}.bias"] = t(f"{name}/bias")

    bn("input_bn", 0)
    for i in range(2):
        conv(f"timbral.{i}.conv", i, False)
        bn(f"timbral.{i}.bn", i + 1)
    for i in range(3):
        conv(f"temporal.{i}.conv", i + 2, False)
        bn(f"temporal.{i}.bn", i + 3)
    for i in range(3):
        conv(f"midend.{i}.conv", i + 5, True)
        bn(f"midend.{i}.bn", i + 6)
    bn("pool_bn", 9)
    out["dense.weight"], out["dense.bias"] = t("dense/kernel").T, t("dense/bias")
    bn("dense_bn", 10)
    out["tags.weight"], out["tags.bias"] = t("dense_1/kernel").T, t("dense_1/bias")
    return as_stored(out)


def vgg_state_dict(reader) -> dict[str, np.ndarray]:
    """The VGG baseline's TensorFlow variables -> irmas.musicnn.Vgg's state-dict names."""
    t = reader.get_tensor
    out: dict[str, np.ndarray] = {}
    for index, ours in enumerate(["input_bn"] + [f"blocks.{i}.bn" for i in range(5)]):
        batch_norm(reader, out, ours, index)
    for i in range(5):
        out[f"blocks.{i}.conv.weight"] = t(f"{i + 1}CNN/kernel").transpose(3, 2, 0, 1)
        out[f"blocks.{i}.conv.bias"] = t(f"{i + 1}CNN/bias")
    out["tags.weight"], out["tags.bias"] = t("dense/kernel").T, t("dense/bias")
    return as_stored(out)


def original_outputs(package: Path, name: str, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The TensorFlow model's embedding and tag logits for mel patches (batch, 187, 96): musicnn's penultimate
    layer, the VGG's third block averaged over time (batch, bands x filters)."""
    import tensorflow as tf

    sys.path.insert(0, str(package.parent))
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, mel.shape[1], mel.shape[2]])
    training = tf.compat.v1.placeholder(tf.bool)
    logits, *layers = models.define_model(x, training, name, 50)
    embedding = tf.reshape(tf.reduce_mean(layers[2], axis=1), [-1, 12 * 128]) if "vgg" in name else layers[-1]
    with tf.compat.v1.Session() as session:
        tf.compat.v1.train.Saver().restore(session, f"{package / name}/")
        return session.run([embedding, logits], feed_dict={x: mel, training: False})


def librosa_patches(clips: np.ndarray) -> np.ndarray:
    """musicnn's own front end (extractor.batch_data): 16 kHz, librosa mel, float16, log10(1 + 10,000 x)."""
    import librosa

    patches = []
    for clip in clips:
        audio = librosa.resample(clip, orig_sr=CLIP_RATE, target_sr=16000)  # what librosa.load does
        mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
        patches.append(np.log10(10000 * mel.astype(np.float16) + 1)[:187])
    return np.stack(patches).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=None,
                        help="musicnn-0.1.0-py3-none-any.whl (default: pip download)")
    args = parser.parse_args()
    import soundfile as sf
    import tensorflow as tf
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "musicnn==0.1.0", "--no-deps", "-d", tmp],
                           check=True)
            wheel = next(Path(tmp).glob("musicnn-0.1.0-*.whl"))
        zipfile.ZipFile(wheel).extractall(Path(tmp) / "wheel")
        package = Path(tmp) / "wheel" / "musicnn"

        clips = []
        for clip in CLIPS:
            audio, rate = sf.read(ROOT / "examples" / clip, dtype="float32", frames=3 * CLIP_RATE, always_2d=True)
            assert rate == CLIP_RATE, f"{clip} is at {rate} Hz"
            audio = audio.mean(axis=1)
            clips.append(audio / np.abs(audio).max())  # peak-normalised, as the classifier's input
        clips = np.stack(clips)
        mel = librosa_patches(clips)
        reference: dict[str, np.ndarray] = {"waveforms": clips, "sample_rate": np.array(CLIP_RATE), "mel": mel}

        (ROOT / "irmas" / "weights").mkdir(exist_ok=True)
        for name in NAMES:
            reader = tf.compat.v1.train.NewCheckpointReader(f"{package / name}/")
            path = ROOT / "irmas" / "weights" / f"{name}.safetensors"
            weights = vgg_state_dict(reader) if "vgg" in name else state_dict(reader)
            save_file(weights, str(path), metadata={
                "source": f"musicnn 0.1.0 (PyPI), {name} TensorFlow checkpoint; ISC licence, (c) Music Technology "
                          "Group, Universitat Pompeu Fabra 2019", "converted_by": "tools/convert_musicnn.py"})
            print(f"{path.relative_to(ROOT)}: sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")
            embedding, logits = original_outputs(package, name, mel)
            layer = "pool3" if "vgg" in name else "penultimate"
            reference[f"{name}/{layer}"], reference[f"{name}/logits"] = embedding, logits
        out = ROOT / "tests" / "data" / "musicnn_reference.npz"
        out.parent.mkdir(exist_ok=True)
        np.savez_compressed(out, **reference)
        print(f"{out.relative_to(ROOT)}: the original's outputs on {len(CLIPS)} clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
