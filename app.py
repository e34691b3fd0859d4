"""Gradio app: record or upload music, see the three STFT bands and which IRMAS instruments play.

UI wiring only: loading, features, prediction and figures all come from the `irmas` library.
    python app.py [--model owner/name@rev | DIR] [--host H] [--port P] [--share]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from irmas.audio import MAX_SECONDS, AudioError, from_array, load_audio
from irmas.data.layouts import AUDIO_SUFFIXES
from irmas.features import ThreeBandSTFT
from irmas.hub import LoadedModel, load_model
from irmas.labels import NAMES, name
from irmas.memory import limit_malloc_arenas, release_freed_memory
from irmas.plots import band_spectrograms, probabilities_bar, timeline
from irmas.predict import LATEST_HOLD, LATEST_SECONDS, Prediction, predict_latest, predict_waveform

try:  # ZeroGPU on Hugging Face Spaces; a no-op everywhere else
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(fn):
        return fn

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_FILE_MB = 200  # a 10-minute 48 kHz 24-bit stereo wav (the longest audio.MAX_SECONDS allows) is ~173 MB
LIVE_SECONDS = LATEST_SECONDS  # the live view keeps this much of the latest audio and answers about it
STREAM_SECONDS = 1.0  # the microphone's audio arrives in chunks this long
MISSED_SECONDS = 1.5 * STREAM_SECONDS  # microphone audio lost beyond this (a chunk, and arrival jitter) is said
LIMITS = f"Any audio or video file up to {MAX_SECONDS / 60:g} minutes and {MAX_FILE_MB} MB."
# Browsers clean a microphone for calls by default: echo cancellation, noise suppression (which takes held notes
# for noise) and automatic gain. Gradio asks for the defaults, so every microphone request of the page is made
# with the three off: the model hears the instrument as it sounds.
MICROPHONE_AS_IT_SOUNDS = """<script>
(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) return;
  const getUserMedia = devices.getUserMedia.bind(devices);
  const asItSounds = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
  devices.getUserMedia = (constraints) => getUserMedia(constraints && constraints.audio
    ? {...constraints, audio: {...(constraints.audio === true ? {} : constraints.audio), ...asItSounds}}
    : constraints);
})();
</script>"""

log = logging.getLogger("irmas.app")


def label_values(prediction: Prediction) -> dict[str, float]:
    """What gr.Label shows: human name -> probability."""
    return {NAMES.get(c, c): float(p) for c, p in zip(prediction.labels, prediction.probabilities)}


def example_label(path: Path) -> str:
    """`cel_voi.ogg` -> "Cello and voice": example files are named by the IRMAS codes they hold."""
    names = [name(code) if code in NAMES else code for code in path.stem.split("_")]
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return text[:1].upper() + text[1:]


def build_demo(loaded: LoadedModel) -> gr.Blocks:
    model = loaded.model
    if torch.cuda.is_available():  # ZeroGPU / GPU Spaces; CPU everywhere else
        model.to("cuda")
    plot_features = ThreeBandSTFT(model.features.bands, model.sample_rate)  # spectrograms stay on the CPU

    @on_gpu
    def analyse(audio_path: str | None):
        """Verdict, top 5, bars, spectrograms, timeline; a rejected input leaves its sentence on the page."""
        if not audio_path:
            return nothing("No audio yet: upload a file or record something first.")
        notices: list[str] = []
        try:
            waveform = load_audio(audio_path, target_rate=model.sample_rate, notices=notices)
        except AudioError as err:
            log.info("rejected input: %s", err)
            return nothing(str(err))
        prediction = predict_waveform(model, waveform, notices=notices)
        several = len(prediction.window_starts) > 1
        verdict = "\n\n".join([f"### {prediction.summary}", *prediction.notices])
        outputs = (verdict, label_values(prediction), probabilities_bar(prediction),
                   band_spectrograms(plot_features, waveform),
                   gr.update(value=timeline(prediction) if several else None, visible=several))
        del waveform, prediction
        release_freed_memory()
        return outputs

    def nothing(reason: str):
        return (f"### Could not analyse this input\n{reason}", None, None, None, gr.update(value=None, visible=False))

    def listen(chunk, heard):
        """Append the microphone's new chunk, keeping the last LIVE_SECONDS. Only this, so each call returns at
        once: Gradio drops the chunks that arrive while a call on the stream is still running."""
        if chunk is None:
            return gr.skip()
        sample_rate, data = chunk
        notices: list[str] = []
        try:
            samples = from_array(sample_rate, data, target_rate=model.sample_rate, notices=notices)
        except AudioError:  # a silent (or broken) chunk: heard as silence of its length, so a pause pushes out
            # what was played before it and counts as listened to
            frames = max(np.shape(data), default=0)  # the longer axis is time
            samples = np.zeros(frames * model.sample_rate // sample_rate if sample_rate > 0 else 0, np.float32)
        audio = heard["audio"] if heard else np.zeros(0, np.float32)
        seconds = (heard["seconds"] if heard else 0.0) + len(samples) / model.sample_rate
        # by this server's clock: when this chunk arrived, and when the recording began (the first chunk ends then)
        arrived = time.monotonic()
        started = heard["started"] if heard else arrived - len(samples) / model.sample_rate
        # per chunk of the window, its coarse-audio notice or None
        chunk_notices = ((heard["notices"] if heard else []) + [notices[0] if notices else None])
        chunk_notices = chunk_notices[-math.ceil(LIVE_SECONDS / STREAM_SECONDS):]
        return {"audio": np.concatenate([audio, samples])[-int(LIVE_SECONDS * model.sample_rate):],
                "seconds": seconds, "notices": chunk_notices, "started": started, "arrived": arrived}

    def classify_live(heard, named_before):
        """Every second while recording (a timer, apart from the stream): the verdict on the last LIVE_SECONDS,
        and the coarse-audio notice when every chunk of them was coarse (the microphone's gain is far down).
        `named_before`, what the previous verdict named, is held a little under the threshold."""
        if not heard:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        audio = heard["audio"]
        listened = f"Listened to {heard['seconds']:.0f} s; the answer is about the last {LIVE_SECONDS:g} s."
        if len(audio) < model.sample_rate * 0.5:
            return gr.skip(), gr.skip(), f"Nothing heard yet. {listened}", ()
        if np.max(np.abs(audio)) < 1e-4:
            return (None, None, f"Only silence in the last {LIVE_SECONDS:g} s. If something is playing, check that "
                    f"the browser records from the right microphone and that it is not muted. {listened}", ())
        prediction = predict_latest(model, audio, named_before=named_before or ())
        notices = heard.get("notices") or [None]
        coarse = f"\n\n{notices[-1]}" if all(notices) else ""
        return (label_values(prediction), probabilities_bar(prediction),
                f"**{prediction.summary}** {listened}{missed_audio(heard)}{coarse}", tuple(prediction.detected))

    def missed_audio(heard) -> str:
        """A sentence when chunks of the recording never reached the app: Gradio drops those that arrive while
        the stream's previous call still runs, which a busy machine makes happen, and the answer is then about
        audio spliced from what was heard."""
        recorded = heard["arrived"] - heard["started"]
        missed = recorded - heard["seconds"]
        if missed <= MISSED_SECONDS:
            return ""
        return (f"\n\nMissed about {missed:.0f} s of the {recorded:.0f} s recorded: this computer is too busy to "
                "take all of the microphone's audio, so the answer is about the parts heard, joined together.")

    with gr.Blocks(title="IRMAS instrument recognition", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# Which instruments are playing?\nUpload or record a few seconds of music. The model "
                    "knows 11 instruments: " + ", ".join(NAMES.values()) + ".")
        gr.Markdown(loaded.describe(), elem_id="model-line")
        with gr.Tab("Analyse a recording"):
            with gr.Row():
                with gr.Column(scale=1):
                    audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                     label="Upload a file (or switch to the microphone below)", elem_id="audio")
                    gr.Markdown(LIMITS, elem_id="limits")
                    button = gr.Button("Analyse", variant="primary", interactive=False)
                    verdict = gr.Markdown("", elem_id="verdict")
                    top5 = gr.Label(num_top_classes=5, label="Most likely", show_heading=False, elem_id="top5")
                with gr.Column(scale=2):
                    bars = gr.Plot(label="Instrument probabilities", elem_id="probabilities")
            # Rendered below the examples, so the examples sit next to the input rather than under long figures.
            timeline_plot = gr.Plot(label="Timeline", visible=False, elem_id="timeline", render=False)
            spectrograms = gr.Plot(label="What the model hears: three frequency bands", elem_id="spectrograms",
                                   render=False)
            outputs = [verdict, top5, bars, spectrograms, timeline_plot]
            examples = sorted(p for p in EXAMPLES_DIR.glob("*.*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if examples:
                # Run on click, not cached: an analysis takes ~0.1 s, and Gradio's example cache fails on the
                # timeline's visibility update ('Plot' object has no attribute 'info', Gradio 6.31).
                gr.Examples([str(p) for p in examples], inputs=audio, outputs=outputs, fn=analyse, run_on_click=True,
                            cache_examples=False, example_labels=[example_label(p) for p in examples],
                            label="Examples (rendered from General MIDI sound banks)")
            timeline_plot.render()
            spectrograms.render()
            # The button only works once there is audio: empty submissions never reach the model.
            audio.change(lambda a: gr.Button(interactive=a is not None), audio, button, api_visibility="private",
                         queue=False)
            button.click(analyse, audio, outputs, api_name="analyse")
            audio.upload(analyse, audio, outputs, api_visibility="private")
            audio.stop_recording(analyse, audio, outputs, api_visibility="private")
        with gr.Tab("Live"):
            gr.Markdown(f"Listens to the microphone and updates every second over the last {LIVE_SECONDS:g} s. "
                        f"An instrument it names stays named until its probability falls {LATEST_HOLD:g} under "
                        "the threshold.")
            mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone", elem_id="mic")
            live_verdict = gr.Markdown("", elem_id="live-verdict")
            live_label = gr.Label(num_top_classes=5, label="Now playing", show_heading=False)
            live_bars = gr.Plot(label="Probabilities")
            heard = gr.State(None)
            named_before = gr.State(())  # what the last live verdict named
            tick = gr.Timer(1.0, active=False)
            mic.start_recording(lambda: (None, (), gr.Timer(active=True)), None, [heard, named_before, tick],
                                api_visibility="private")
            mic.stream(listen, [mic, heard], heard, stream_every=STREAM_SECONDS, time_limit=600,
                       api_visibility="private")
            mic.stop_recording(lambda: gr.Timer(active=False), None, tick, api_visibility="private")
            tick.tick(classify_live, [heard, named_before], [live_label, live_bars, live_verdict, named_before],
                      api_visibility="private", show_progress="hidden")
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def serve(demo: gr.Blocks, **launch_kwargs):
    """Launch the app's page: its upload limit and microphone settings, and whatever `launch_kwargs` add."""
    return demo.launch(head=MICROPHONE_AS_IT_SOUNDS, max_file_size=f"{MAX_FILE_MB}mb", **launch_kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="owner/name[@revision] or a folder (default: $IRMAS_MODEL, "
                                                       "else the bundled model)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="a public gradio.live link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("irmas").setLevel(logging.INFO)  # one line per rejected input
    limit_malloc_arenas()
    loaded = load_model(args.model)
    print(loaded.describe())
    serve(build_demo(loaded), server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
