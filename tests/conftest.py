"""Fixtures the tests make themselves: audio files, a small saved model, a rendered data set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TINY_CHANNELS = [4, 8]  # a real InstrumentClassifier, small enough to train in seconds


def tone(seconds: float = 3.0, sr: int = 22050, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """A harmonic tone (not a pure sine, so every band has energy)."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(amp / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 12))
    return (y / np.max(np.abs(y)) * amp).astype(np.float32)


def encode(path: Path, samples: np.ndarray, rate: int, codec: str, container: str | None = None) -> Path:
    """Write (n,) or (n, channels) float samples with an FFmpeg encoder (PyAV's), as a phone or browser would."""
    import av

    planar = np.atleast_2d(np.asarray(samples, dtype=np.float32).T)
    layout = {1: "mono", 2: "stereo"}[len(planar)]
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def plot_array(value) -> np.ndarray:
    """A plotly JSON array as numpy: plotly 6 sends arrays as {'dtype', 'bdata' (base64)[, 'shape']}."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        raw = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return raw.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else raw
    return np.asarray(value)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A save_pretrained folder of a small, randomly initialised model (fixed seed)."""
    from irmas.model import InstrumentClassifier

    torch.manual_seed(0)
    model = InstrumentClassifier(tower_channels=TINY_CHANNELS).eval()
    out = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from irmas.model import InstrumentClassifier

    return InstrumentClassifier.from_pretrained(str(tiny_model_dir), strict=True).eval()


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> Path:
    """A small render from both training banks: 6 clips per class per bank, 4 test excerpts per bank."""
    from irmas.data.render import render_dataset

    out = tmp_path_factory.mktemp("synth")
    render_dataset(["FluidR3_GM", "MuseScore_General"], out, train_per_class=6, test_excerpts=4, seed=7,
                   workers=2, progress=False)
    return out


def run_cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m irmas ...` as a user would, in a subprocess."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "irmas", *args], capture_output=True, text=True, env=full_env,
                          cwd=ROOT, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def app_url(tiny_model_dir):
    """The Gradio app on the tiny model, served on a free loopback port."""
    import app
    from irmas.hub import load_model

    demo = app.build_demo(load_model(str(tiny_model_dir)))
    _, url, _ = app.serve(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield url
    demo.close()
