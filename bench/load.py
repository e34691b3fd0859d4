"""The app under concurrent load: rounds of clients each sending 10 s files; memory after every round.

Peak RSS must stay under 500 MB and flat from round to round (a leak or allocator growth shows as a rise).
"""

from __future__ import annotations

import concurrent.futures
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import memory_mb, serve_app, table

ROUNDS, CLIENTS, REQUESTS = 4, 8, 25  # per round: CLIENTS clients at once, REQUESTS requests each


def run(rounds: int = ROUNDS, clients: int = CLIENTS, requests: int = REQUESTS) -> str:
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        sf.write(clip, 0.3 * np.random.default_rng(0).standard_normal((10 * 44100, 2)), 44100)
        with serve_app() as (url, app, _):
            Client(url, verbose=False).predict(handle_file(str(clip)), api_name="/analyse")
            rss, peak = memory_mb(app.pid)
            rows = [["after one request", "", "", "", f"{rss:.0f}", f"{peak:.0f}"]]

            def client(_):
                c, times = Client(url, verbose=False), []
                for _ in range(requests):
                    t = time.perf_counter()
                    c.predict(handle_file(str(clip)), api_name="/analyse")
                    times.append(time.perf_counter() - t)
                return times

            for r in range(rounds):
                start = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                    times = [t for ts in pool.map(client, range(clients)) for t in ts]
                wall = time.perf_counter() - start
                rss, peak = memory_mb(app.pid)
                rows.append([f"round {r + 1}", len(times), f"{statistics.median(times) * 1000:.0f}",
                             f"{len(times) / wall:.1f}", f"{rss:.0f}", f"{peak:.0f}"])
    return table(f"The app under load ({clients} clients x {requests} requests of a 10 s file per round)",
                 ["when", "requests", "latency ms (median)", "requests/s", "RSS MB", "peak RSS MB"], rows)
