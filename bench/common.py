"""Timing helpers and the machine line every table starts with."""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    # the vector instructions PyTorch's CPU kernels use: the project's AMD EPYC VM (AVX2) runs musicnn at half the
    # speed of its Intel Xeon one, so figures from two machines compare only with this said
    vectors = torch.backends.cpu.get_cpu_capability()
    threads = torch.get_num_threads()
    return f"{cpu} ({vectors}), {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads), {gpu}"


def median_ms(fn: Callable[[], object], repeat: int = 10, warmup: int = 3, min_seconds: float = 1.0,
              warmup_seconds: float = 1.0) -> float:
    """Median of at least `repeat` calls, and of as many as fit in `min_seconds` (fast calls are noisy), after
    `warmup` calls and `warmup_seconds`: a model's first calls after loading grow the allocator's heap, and the
    bundled model's b1 passes took 56-84 ms for about 8 calls before settling at 47-50 ms."""
    start = time.perf_counter()
    for i in itertools.count():
        if i >= warmup and time.perf_counter() - start >= warmup_seconds:
            break
        fn()
    times: list[float] = []
    while len(times) < repeat or sum(times) < min_seconds:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def table(title: str, header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    out = [f"\n### {title}", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [line(r) for r in rows])


ROOT = Path(__file__).resolve().parent.parent


def memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@contextlib.contextmanager
def serve_app(*args: str, timeout: float = 120) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """`python app.py` on a free loopback port: yields (url, process, seconds until it answered)."""
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.perf_counter() - start > timeout or app.poll() is not None:
                    raise RuntimeError(f"the app did not start within {timeout:g} s") from None
                time.sleep(0.2)
        yield url, app, time.perf_counter() - start
    finally:
        app.terminate()
        app.wait()
