"""How right is the Live tab when the music reaches it through a browser's microphone?

Chromium's fake microphone plays each example, looped, into the app's Live tab, and the live verdict is read once
a second, as a person would read it. Twice: with the microphone processing browsers apply by default (echo
cancellation, noise suppression, automatic gain; what Gradio's audio component asks for), and as the app serves
its page (`app.serve`: the three off). An answer is scored from the first one about a full LIVE_SECONDS on.
Needs Debian's chromium and playwright (`tests/run.sh` installs both).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from irmas.labels import NAMES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CODES = {v: k for k, v in NAMES.items()}
# What every microphone request of the page got, as the track reports it (the page's own wrapper, if any, runs first).
RECORD_SETTINGS = """(() => {
  const devices = navigator.mediaDevices, getUserMedia = devices.getUserMedia.bind(devices);
  window.microphoneSettings = [];
  devices.getUserMedia = async (c) => {
    const stream = await getUserMedia(c);
    stream.getAudioTracks().forEach(t => window.microphoneSettings.push(t.getSettings()));
    return stream;
  };
})();"""
PROCESSING = ("echoCancellation", "noiseSuppression", "autoGainControl")


def heard_codes(verdict_line: str) -> frozenset[str]:
    """'Heard: electric guitar and trumpet. Listened to ...' -> {'gel', 'tru'}; no instrument -> {}."""
    if not verdict_line.startswith("Heard: "):
        return frozenset()
    names = verdict_line[len("Heard: "):].split(".")[0].replace(" and ", ", ").split(", ")
    return frozenset(CODES[n] for n in names)


def open_live_tab(playwright, url: str, mic_file: Path):
    """(browser, page): Chromium on the app's Live tab, recording from a fake microphone that plays `mic_file`,
    its first answer shown; each microphone track's settings are kept in `window.microphoneSettings`."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={mic_file}"])
    context = browser.new_context(permissions=["microphone"])
    context.add_init_script(RECORD_SETTINGS)
    page = context.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Live").click()
    page.get_by_role("button", name="Record").last.click()
    page.locator("#live-verdict").filter(has_text="Listened to").wait_for(timeout=60_000)
    return browser, page


def listen(url: str, mic_file: Path, seconds: int) -> tuple[list[tuple[float, frozenset[str]]], dict]:
    """(seconds listened, codes named) once a second for `seconds` after the first answer, and the mic's settings."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = open_live_tab(p, url, mic_file)
        live = page.locator("#live-verdict")
        said = []
        for _ in range(seconds):
            page.wait_for_timeout(1000)
            line = live.inner_text().split("\n")[0]
            if "Listened to " in line:
                said.append((float(line.split("Listened to ")[1].split(" s")[0]), heard_codes(line)))
        settings = page.evaluate("() => window.microphoneSettings")
        browser.close()
    return said, (settings or [{}])[-1]


def run(model: str | None = None, seconds: int = 25, runs: int = 2) -> str:
    import app
    from irmas.hub import load_model
    from irmas.predict import LATEST_SECONDS

    from .common import table

    if not Path(CHROMIUM).exists():
        return "\n### The Live tab through Chromium's microphone: skipped, chromium is not installed (tests/run.sh)"
    loaded = load_model(model)
    examples = sorted(p for p in EXAMPLES.glob("*.ogg"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for setting, launch in (("the browser's default processing", lambda d: d.launch(
                                    prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)),
                                ("the app's page (processing off)", lambda d: app.serve(
                                    d, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True))):
            demo = app.build_demo(loaded)
            _, url, _ = launch(demo)
            try:
                for example in examples:
                    audio, sr = sf.read(example, dtype="float32", always_2d=True)
                    mic_file = Path(tmp) / f"{example.stem}.wav"
                    sf.write(mic_file, np.resize(audio.mean(1), (seconds + 30) * sr), sr, subtype="PCM_16")
                    truth = frozenset(example.stem.split("_"))
                    answers, hits, named, wanted = [], 0, 0, 0
                    for _ in range(runs):
                        said, settings = listen(url, mic_file, seconds)
                        answers += [codes for listened, codes in said if listened >= LATEST_SECONDS]
                    for codes in answers:
                        hits, named, wanted = hits + len(codes & truth), named + len(codes), wanted + len(truth)
                    rows.append([setting, example.stem, " / ".join(str(settings.get(k, "?")) for k in PROCESSING),
                                 str(len(answers)),
                                 f"{np.mean([codes == truth for codes in answers]):.2f}",
                                 f"{np.mean([bool(codes - truth) for codes in answers]):.2f}",
                                 f"{np.mean([bool(truth - codes) for codes in answers]):.2f}",
                                 f"{2 * hits / max(named + wanted, 1):.3f}"])
            finally:
                demo.close()
            time.sleep(1)
    return table(f"The Live tab through Chromium's microphone: {runs} runs of {seconds} s per example "
                 f"(threshold {loaded.model.threshold})", [
                     "microphone", "example", "echo cancellation / noise suppression / auto gain", "answers",
                     "exactly right", "names a wrong instrument", "misses one", "micro F1"], rows)
