"""Gradio app: record or upload music, see the three STFT bands and which IRMAS instruments play.

UI wiring only: loading, features, prediction and figures all come from the `irmas` library.
    python app.py [--model owner/name@rev | DIR] [--host H] [--port P] [--share]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from irmas.audio import AudioError, from_array, load_audio
from irmas.data.layouts import AUDIO_SUFFIXES
from irmas.features import ThreeBandSTFT
from irmas.hub import LoadedModel, load_model
from irmas.labels import NAMES
from irmas.plots import band_spectrograms, probabilities_bar, timeline
from irmas.predict import WINDOW_SECONDS, Prediction, predict_waveform

try:  # ZeroGPU on Hugging Face Spaces; a no-op everywhere else
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(fn):
        return fn

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_FILE_SIZE = "100mb"
LIVE_SECONDS = WINDOW_SECONDS  # sliding window of the live view


def label_values(prediction: Prediction) -> dict[str, float]:
    """What gr.Label shows: human name -> probability."""
    return {NAMES.get(c, c): float(p) for c, p in zip(prediction.labels, prediction.probabilities)}


def build_demo(loaded: LoadedModel) -> gr.Blocks:
    model = loaded.model
    if torch.cuda.is_available():  # ZeroGPU / GPU Spaces; CPU everywhere else
        model.to("cuda")
    plot_features = ThreeBandSTFT(model.features.bands, model.sample_rate)  # spectrograms stay on the CPU

    @on_gpu
    def analyse(audio_path: str | None):
        if not audio_path:
            raise gr.Error("No audio yet: record something or upload a file first.")
        try:
            waveform = load_audio(audio_path, target_rate=model.sample_rate)
        except AudioError as err:
            raise gr.Error(str(err)) from None
        prediction = predict_waveform(model, waveform)
        several = len(prediction.window_starts) > 1
        return (label_values(prediction), probabilities_bar(prediction), band_spectrograms(plot_features, waveform),
                gr.Plot(timeline(prediction) if several else None, visible=several))

    def live(chunk, buffer):
        """Append the new microphone chunk, keep the last 3 s, and classify that window."""
        if chunk is None:
            return gr.skip(), gr.skip(), buffer
        sample_rate, data = chunk
        try:
            samples = from_array(sample_rate, data, target_rate=model.sample_rate)
        except AudioError:  # a silent or tiny chunk: keep listening
            samples = np.zeros(0, dtype=np.float32)
        buffer = np.concatenate([buffer if buffer is not None else np.zeros(0, np.float32), samples])
        buffer = buffer[-int(LIVE_SECONDS * model.sample_rate):]
        if len(buffer) < model.sample_rate * 0.5 or np.max(np.abs(buffer)) < 1e-4:
            return gr.skip(), gr.skip(), buffer
        prediction = predict_waveform(model, buffer)
        return label_values(prediction), probabilities_bar(prediction), buffer

    with gr.Blocks(title="IRMAS instrument recognition") as demo:
        gr.Markdown("# Which instruments are playing?\nRecord or upload a few seconds of music. The model "
                    "knows 11 instruments: " + ", ".join(NAMES.values()) + ".")
        gr.Markdown(f"**Model:** {loaded.describe()}", elem_id="model-line")
        with gr.Tab("Analyse a recording"):
            with gr.Row():
                with gr.Column(scale=1):
                    audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Music")
                    button = gr.Button("Analyse", variant="primary", interactive=False)
                    top5 = gr.Label(num_top_classes=5, label="Top 5", elem_id="top5")
                with gr.Column(scale=2):
                    bars = gr.Plot(label="Instrument probabilities", elem_id="probabilities")
            timeline_plot = gr.Plot(label="Timeline", visible=False)
            spectrograms = gr.Plot(label="Three-band spectrograms", elem_id="spectrograms")
            outputs = [top5, bars, spectrograms, timeline_plot]
            examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if examples:
                gr.Examples(examples, inputs=audio, outputs=outputs, fn=analyse, cache_examples=True, cache_mode="lazy",
                            label="Examples (rendered from General MIDI sound banks)")
            # The button only works once there is audio: empty submissions never reach the model.
            audio.change(lambda a: gr.Button(interactive=a is not None), audio, button, api_visibility="private",
                         queue=False)
            button.click(analyse, audio, outputs, api_name="analyse")
            audio.upload(analyse, audio, outputs, api_visibility="private")
            audio.stop_recording(analyse, audio, outputs, api_visibility="private")
        with gr.Tab("Live"):
            gr.Markdown(f"Listens to the microphone and updates about every second over the last "
                        f"{LIVE_SECONDS:g} s.")
            mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone")
            live_label = gr.Label(num_top_classes=5, label="Now playing")
            live_bars = gr.Plot(label="Probabilities")
            buffer = gr.State(None)
            mic.stream(live, [mic, buffer], [live_label, live_bars, buffer], stream_every=1.0, time_limit=600,
                       api_visibility="private")
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="owner/name[@revision] or a folder (default: $IRMAS_MODEL, "
                                                       "else the bundled model)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="a public gradio.live link")
    args = parser.parse_args()
    loaded = load_model(args.model)
    print(loaded.describe())
    build_demo(loaded).launch(server_name=args.host, server_port=args.port, share=args.share,
                              max_file_size=MAX_FILE_SIZE)


if __name__ == "__main__":
    main()
