"""A real browser (Debian's chromium via Playwright) uploads a file and reads the result.

The screenshot is kept as a test artifact in artifacts/app.png.
"""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, tone

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"




def test_upload_in_a_browser_shows_plots_and_top_instrument(app_url, tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: tests/run.sh installs it")
        pytest.skip("chromium not installed (tests/run.sh installs it)")
    from playwright.sync_api import sync_playwright

    audio = tmp_path / "music.wav"
    sf.write(audio, np.stack([tone(6.0, 44100)] * 2, 1), 44100)
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(app_url)
        page.get_by_role("button", name="Upload file").first.click()  # the microphone is the default source
        page.locator("input[type=file]").first.set_input_files(str(audio))  # upload runs the analysis
        page.locator("#probabilities .js-plotly-plot").wait_for(timeout=60_000)
        page.locator("#spectrograms .js-plotly-plot").wait_for(timeout=60_000)
        top = page.locator("#top5 h2, #top5 .output-class").first
        top.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "app.png"), full_page=True)
        top_text = top.inner_text().strip()
        model_line = page.locator("#model-line").inner_text()
        browser.close()
    from irmas.labels import NAMES
    assert top_text in NAMES.values()
    assert "local model" in model_line
