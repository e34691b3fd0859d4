"""Plotly figures: the three band spectrograms, instrument probabilities, and the window timeline."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .features import ThreeBandSTFT
from .labels import NAMES
from .predict import Prediction

MAX_COLUMNS = 1200  # spectrogram columns sent to the browser; longer recordings are max-pooled in time
BAND_TITLES = ("0-1 kHz (n_fft 1024)", "1-4 kHz (n_fft 512)", "4-11 kHz (n_fft 256)")


def band_spectrograms(features: ThreeBandSTFT, waveform: np.ndarray) -> go.Figure:
    """One dB heatmap per band, time in s and frequency in Hz on the axes."""
    with torch.inference_mode():
        bands = features(torch.from_numpy(np.ascontiguousarray(waveform))[None])
    fig = make_subplots(rows=3, cols=1, subplot_titles=BAND_TITLES, vertical_spacing=0.09)
    for i, spec in enumerate(bands):
        db = (20 / np.log(10)) * spec[0].numpy().T  # natural-log magnitude -> dB, (bins, frames)
        times = features.frame_times(i, db.shape[1]).numpy()
        step = int(np.ceil(db.shape[1] / MAX_COLUMNS))
        if step > 1:
            cols = db.shape[1] // step * step
            db = db[:, :cols].reshape(db.shape[0], -1, step).max(axis=2)
            times = times[:cols:step]
        top = float(db.max())
        fig.add_trace(go.Heatmap(z=db, x=times, y=features.frequencies(i).numpy(), zmin=top - 80, zmax=top,
                                 colorscale="Magma", colorbar=dict(title="dB", len=0.3, y=0.86 - 0.36 * i),
                                 hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z:.0f} dB<extra></extra>"),
                      row=i + 1, col=1)
        fig.update_yaxes(title_text="Hz", row=i + 1, col=1)
    fig.update_xaxes(title_text="time (s)", row=3, col=1)
    fig.update_layout(height=720, margin=dict(l=60, r=20, t=40, b=40))
    return fig


def probabilities_bar(prediction: Prediction) -> go.Figure:
    """Horizontal bars, most probable on top, detected instruments coloured, threshold drawn."""
    order = np.argsort(prediction.probabilities)  # ascending: plotly draws the last bar on top
    names = [NAMES.get(prediction.labels[i], prediction.labels[i]) for i in order]
    probs = prediction.probabilities[order]
    detected = set(prediction.detected)
    colors = ["#e4572e" if prediction.labels[i] in detected else "#9db4c0" for i in order]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=colors,
                           text=[f"{p:.2f}" for p in probs], textposition="outside",
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.add_vline(x=prediction.threshold, line_dash="dash", line_color="#333",
                  annotation_text=f"threshold {prediction.threshold:.2f}", annotation_position="top")
    fig.update_layout(xaxis=dict(range=[0, 1.08], title="probability"), height=420,
                      margin=dict(l=120, r=20, t=40, b=40), title="Instruments (red: detected)")
    return fig


def timeline(prediction: Prediction) -> go.Figure:
    """Instrument x time heatmap of the per-window probabilities."""
    names = [NAMES.get(c, c) for c in prediction.labels]
    centres = prediction.window_starts + 1.5
    fig = go.Figure(go.Heatmap(z=prediction.timeline.T, x=centres, y=names, zmin=0, zmax=1, colorscale="Blues",
                               colorbar=dict(title="p"),
                               hovertemplate="%{y} at %{x:.1f} s: %{z:.2f}<extra></extra>"))
    fig.update_layout(height=380, xaxis_title="window centre (s)", margin=dict(l=120, r=20, t=40, b=40),
                      title="Per-window probabilities (3 s windows)")
    return fig
