"""Plotly figures: the three band spectrograms, instrument probabilities, and the window timeline.

Figures are built from plain layout dicts (no `make_subplots`, no `add_vline`: each costs more than the
model's forward pass), and spectrograms are sent as whole dB in int8, 1/8 of the float64 JSON.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from .features import ThreeBandSTFT
from .labels import NAMES
from .predict import WINDOW_SECONDS, Prediction

MAX_COLUMNS = 1200  # spectrogram columns sent to the browser; longer recordings are max-pooled in time
DB_RANGE = 80  # dB shown below each band's loudest point
BAND_TITLES = ("Low band, 0-1 kHz: the notes' pitch (finest frequency detail)",
               "Middle band, 1-4 kHz: tone colour",
               "High band, 4-11 kHz: brightness, breath and attacks (finest time detail)")


def band_spectrograms(features: ThreeBandSTFT, waveform: np.ndarray) -> go.Figure:
    """One heatmap per band, stacked top (low band) to bottom: loudness in dB below the band's loudest point."""
    with torch.inference_mode():
        bands = features(torch.from_numpy(np.ascontiguousarray(waveform))[None])
    traces, layout = [], dict(height=800, margin=dict(l=70, r=20, t=70, b=40), annotations=[])
    height, gap = 0.76 / len(bands), 0.12
    for i, spec in enumerate(bands):
        db = (20 / np.log(10)) * spec[0].numpy().T  # natural-log magnitude -> dB, (bins, frames)
        times = features.frame_times(i, db.shape[1]).numpy()
        step = int(np.ceil(db.shape[1] / MAX_COLUMNS))
        if step > 1:
            cols = db.shape[1] // step * step
            db = db[:, :cols].reshape(db.shape[0], -1, step).max(axis=2)
            times = times[:cols:step]
        db -= np.ceil(db.max())  # 0 dB is the band's loudest point, so no scale reads "+20 dB"
        z = np.clip(np.round(db), -DB_RANGE, 0).astype(np.int8)
        axis = "" if i == 0 else str(i + 1)
        y0 = 1 - (i + 1) * height - i * gap / 2
        traces.append(go.Heatmap(
            z=z, x=times.astype(np.float32), y=features.frequencies(i).numpy().astype(np.float32), zmin=-DB_RANGE,
            zmax=0, colorscale="Magma", xaxis=f"x{axis}", yaxis=f"y{axis}",
            colorbar=dict(title="dB below<br>loudest", len=height, y=y0 + height / 2),
            hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z} dB<extra></extra>"))
        layout[f"xaxis{axis}"] = dict(anchor=f"y{axis}", domain=[0, 1],
                                      title="time (s)" if i == len(bands) - 1 else None)
        layout[f"yaxis{axis}"] = dict(anchor=f"x{axis}", domain=[y0, y0 + height], title="pitch (Hz)")
        layout["annotations"].append(dict(text=f"<b>{BAND_TITLES[i]}</b>", x=0, y=y0 + height + 0.01, xref="paper",
                                          yref="paper", xanchor="left", yanchor="bottom", showarrow=False))
    return go.Figure(traces, layout)


def probabilities_bar(prediction: Prediction) -> go.Figure:
    """Horizontal bars, most probable on top, detected instruments coloured, threshold drawn."""
    order = np.argsort(prediction.probabilities)  # ascending: plotly draws the last bar on top
    names = [NAMES.get(prediction.labels[i], prediction.labels[i]) for i in order]
    probs = prediction.probabilities[order]
    detected = set(prediction.detected)
    colors = ["#e4572e" if prediction.labels[i] in detected else "#9db4c0" for i in order]
    threshold = prediction.threshold
    bar = go.Bar(x=probs, y=names, orientation="h", marker_color=colors, text=[f"{p:.2f}" for p in probs],
                 textposition="outside", hovertemplate="%{y}: %{x:.3f}<extra></extra>")
    return go.Figure(bar, dict(
        xaxis=dict(range=[0, 1.08], title="probability"), height=420, margin=dict(l=120, r=20, t=40, b=40),
        title="Instruments (red: detected)",
        shapes=[dict(type="line", x0=threshold, x1=threshold, y0=0, y1=1, yref="paper",
                     line=dict(dash="dash", color="#333"))],
        annotations=[dict(text=f"threshold {threshold:.2f}", x=threshold, y=1, yref="paper", yanchor="bottom",
                          showarrow=False)]))


def timeline(prediction: Prediction) -> go.Figure:
    """Instrument x time heatmap of the per-window probabilities."""
    names = [NAMES.get(c, c) for c in prediction.labels]
    centres = prediction.window_starts + WINDOW_SECONDS / 2
    heatmap = go.Heatmap(z=prediction.timeline.T, x=centres, y=names, zmin=0, zmax=1, colorscale="Blues",
                         colorbar=dict(title="p"), hovertemplate="%{y} at %{x:.1f} s: %{z:.2f}<extra></extra>")
    title = f"Per-window probabilities ({WINDOW_SECONDS:g} s windows)"
    return go.Figure(heatmap, dict(height=380, xaxis=dict(title="window centre (s)"), title=title,
                                   margin=dict(l=120, r=20, t=40, b=40)))
