"""Cold start (process start -> first answer) for the CLI and the app, and the app's peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import ROOT, memory_mb, serve_app, table

PHASES = """
import time; t0 = time.perf_counter()
import torch, irmas.predict, irmas.hub; t1 = time.perf_counter()
from irmas.hub import load_model; m = load_model(None).model; t2 = time.perf_counter()
from irmas.predict import predict_file; predict_file(m, {path!r}); t3 = time.perf_counter()
print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}} {{t3 - t2:.2f}}")
"""


def run(requests: int = 10) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        sf.write(clip, 0.3 * np.random.default_rng(0).standard_normal((10 * 44100, 2)), 44100)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "irmas", "predict", str(clip)], env=env, check=True,
                       capture_output=True)
        rows.append(["CLI `python -m irmas predict` (10 s file)", f"{time.perf_counter() - start:.2f}", "", ""])
        phases = subprocess.run([sys.executable, "-c", PHASES.format(path=str(clip))], env=env, check=True,
                                capture_output=True, text=True).stdout.split()
        rows.append(["  of which: imports / model load / first prediction", " / ".join(phases), "", ""])

        from gradio_client import Client, handle_file

        with serve_app() as (url, app, up):
            client = Client(url, verbose=False)
            start = time.perf_counter()
            client.predict(handle_file(str(clip)), api_name="/analyse")
            first = time.perf_counter() - start
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                client.predict(handle_file(str(clip)), api_name="/analyse")
                times.append(time.perf_counter() - t)
            cold = up + first
            rows.append(["app `python app.py` -> first answer", f"{cold:.2f}", f"{np.median(times) * 1000:.0f}",
                         f"{memory_mb(app.pid)[1]:.0f}"])
    return table("Cold start and memory (bundled model)", ["what", "seconds", "10 s request, ms (median)",
                                                           "peak RSS MB"], rows)
