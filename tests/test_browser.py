"""A real browser (Debian's chromium via Playwright) uses the page as a person would.

Screenshots are kept as test artifacts in artifacts/.
"""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, tone

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture
def page(app_url):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: tests/run.sh installs it")
        pytest.skip("chromium not installed (tests/run.sh installs it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(app_url)
        page.locator("#audio").wait_for(timeout=30_000)
        yield page
        browser.close()


def upload(page, path):
    """Upload is the audio box's default source; audio already there is cleared first, as a person does."""
    if not page.locator("#audio input[type=file]").count():
        page.locator("#audio button[aria-label=Clear]").click()
    page.locator("#audio input[type=file]").set_input_files(str(path))


def mark_shown(page):
    """Tag what is on the page now: Gradio draws a new heading and new plots for each result."""
    page.evaluate("() => document.querySelectorAll('#verdict h3, .js-plotly-plot').forEach(e => e.dataset.old = 1)")


def wait_for_new(page, *selectors: str) -> None:
    for sel in selectors:
        page.locator(f"{sel}:not([data-old])").first.wait_for(timeout=60_000)


def verdict(page) -> str:
    return page.locator("#verdict").inner_text()


PLOTS = ("#probabilities .js-plotly-plot", "#spectrograms .js-plotly-plot", "#timeline .js-plotly-plot")


def outputs_text(page) -> str:
    return " ".join(page.locator(sel).inner_text() for sel in ("#top5", "#probabilities", "#spectrograms"))


def test_upload_shows_verdict_plots_and_a_model_line_in_words(page, tmp_path):
    audio = tmp_path / "music.wav"
    sf.write(audio, np.stack([tone(6.0, 44100)] * 2, 1), 44100)
    upload(page, audio)
    wait_for_new(page, "#verdict h3", *PLOTS)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    assert verdict(page).startswith("Heard: ") or verdict(page).startswith("None of the 11 instruments is heard")
    model_line = page.locator("#model-line").inner_text()
    assert "model from the folder" in model_line and "cel, cla" not in model_line and "/" not in model_line


def test_every_example_analyses_on_click_with_all_plots_drawn(page):
    page.get_by_role("button", name="Cello and voice").wait_for(timeout=30_000)
    buttons = page.get_by_role("button", name=" and ")
    labels = [buttons.nth(i).inner_text() for i in range(buttons.count())]
    assert labels == ["Cello and voice", "Clarinet and piano", "Acoustic guitar and organ",
                      "Electric guitar and trumpet"]
    for i, label in enumerate(labels):
        mark_shown(page)
        page.get_by_role("button", name=label).click()
        wait_for_new(page, *PLOTS)  # the verdict's text may repeat the previous example's
        assert "Could not analyse" not in verdict(page) and "Error" not in outputs_text(page)
        assert len(page.locator("#spectrograms .heatmaplayer").all()) == 3  # the three bands drawn
        page.screenshot(path=str(ARTIFACTS / f"example-{i}.png"), full_page=True)


def test_a_bad_file_leaves_its_sentence_on_the_page_and_no_bare_error(page, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"definitely not audio" * 100)
    upload(page, bad)
    wait_for_new(page, "#verdict h3")
    page.wait_for_timeout(12_000)  # longer than a toast lasts
    page.screenshot(path=str(ARTIFACTS / "bad-file.png"), full_page=True)
    assert verdict(page).startswith("Could not analyse this input") and "not an audio file" in verdict(page)
    assert "Error" not in outputs_text(page)
    good = tmp_path / "music.wav"
    sf.write(good, tone(4.0), 22050)
    mark_shown(page)
    upload(page, good)
    wait_for_new(page, "#verdict h3", *PLOTS)
    assert "Could not analyse" not in verdict(page)
