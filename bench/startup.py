"""Cold start (process start -> first answer) for the CLI and the app, and the app's peak memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import table

ROOT = Path(__file__).resolve().parent.parent
PHASES = """
import time; t0 = time.perf_counter()
import torch, irmas.predict, irmas.hub; t1 = time.perf_counter()
from irmas.hub import load_model; m = load_model(None).model; t2 = time.perf_counter()
from irmas.predict import predict_file; predict_file(m, {path!r}); t3 = time.perf_counter()
print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}} {{t3 - t2:.2f}}")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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

        port = _free_port()
        start = time.perf_counter()
        app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            from gradio_client import Client, handle_file

            client = None
            while client is None and time.perf_counter() - start < 120:
                try:
                    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(0.2)
            client.predict(handle_file(str(clip)), api_name="/analyse")
            cold = time.perf_counter() - start
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                client.predict(handle_file(str(clip)), api_name="/analyse")
                times.append(time.perf_counter() - t)
            rows.append(["app `python app.py` -> first answer", f"{cold:.2f}", f"{np.median(times) * 1000:.0f}",
                         f"{_peak_rss_mb(app.pid):.0f}"])
        finally:
            app.terminate()
            app.wait()
    return table("Cold start and memory (bundled model)", ["what", "seconds", "10 s request, ms (median)",
                                                           "peak RSS MB"], rows)
