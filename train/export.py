"""Training checkpoint -> save_pretrained folder with a model card; folder -> Hub repo."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import torch

from irmas.labels import NAMES
from irmas.model import InstrumentClassifier

from .system import InstrumentSystem


def read_checkpoint(ckpt: str | os.PathLike) -> dict:
    """A Lightning checkpoint read without unpickling code (weights_only=True)."""
    return torch.load(ckpt, map_location="cpu", weights_only=True)


def load_system(ckpt: str | os.PathLike, state: dict | None = None) -> InstrumentSystem:
    """Rebuild the system from a Lightning checkpoint (or its already-read `state`)."""
    state = read_checkpoint(ckpt) if state is None else state
    accepted = inspect.signature(InstrumentSystem).parameters  # LightningCLI adds entries of its own
    hparams = {k: v for k, v in state.get("hyper_parameters", {}).items() if k in accepted}
    hparams["panns_checkpoint"] = None  # the weights below replace any warm start
    system = InstrumentSystem(**hparams)
    system.load_state_dict(state["state_dict"], strict=True)
    return system.eval()


def export(ckpt: str | os.PathLike, out_dir: str | os.PathLike, card: dict | None = None) -> Path:
    """Write config.json + model.safetensors + README.md (model card) for the model in `ckpt`.

    `card` may hold `training_data` (a paragraph), `trained_on` (a phrase the app shows), `results` (markdown:
    figures on test data), `metrics` (name -> value) and `config` (the training YAML text).
    """
    state = read_checkpoint(ckpt)
    system = load_system(ckpt, state)
    out_dir = Path(out_dir)
    system.model.save_pretrained(out_dir)
    card = dict(card or {})
    card.setdefault("metrics", {k: round(float(v), 4) for k, v in _checkpoint_metrics(state).items()})
    card.setdefault("midend_tuned", bool(system.hparams.get("midend_lr")))
    (out_dir / "README.md").write_text(model_card(system.model, epoch=state.get("epoch"), **card))
    return out_dir


def _checkpoint_metrics(state: dict) -> dict:
    """The validation scores the system stored with the checkpoint, else the score ModelCheckpoint monitored."""
    if state.get("validation"):
        return dict(sorted(state["validation"].items()))
    out = {}
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and value.get("best_model_score") is not None:
            out[value.get("monitor", "score")] = value["best_model_score"]
    return out


def model_card(model: InstrumentClassifier, metrics: dict | None = None, training_data: str = "not recorded",
               config: str = "", epoch=None, trained_on: str | None = None, results: str = "",
               midend_tuned: bool = False) -> str:
    """The Hub model card: what the model is, what it learnt from (with licences), what it scores, its limits.
    `midend_tuned`: training fine-tuned musicnn's upper mid-end (train.system's `midend_lr`)."""
    params = sum(p.numel() for p in model.parameters())
    first_width, last_width = model.towers[0].blocks[0].conv1.out_channels, model.towers[0].fc1.in_features
    frame_ms = 1000 * model.features.bands[0]["hop"] * model.towers[0].time_pool / model.sample_rate
    labels = "\n".join(f"| `{c}` | {NAMES.get(c, c)} |" for c in model.labels)
    metric_rows = "\n".join(f"| {k} | {v} |" for k, v in (metrics or {}).items()) or "| (none recorded) | |"
    encoder = (f" A fourth branch, the {model.encoder_name} embedding (musicnn's CNNs trained on real music; weights "
               "by Jordi Pons, Music Technology Group, Universitat Pompeu Fabra, ISC licence), "
               + ("held fixed but for musicnn's two upper mid-end convolutions, fine-tuned at a low rate, "
                  if midend_tuned else "held fixed, ") + "joins the fusion.") if model.encoder is not None else ""
    front = "\n".join(["library_name: irmas", "license: mit", "pipeline_tag: audio-classification",
                       "tags: [audio-classification, musical-instrument-recognition, irmas]"]
                      + ([f"trained_on: {json.dumps(trained_on)}"] if trained_on else []))
    return f"""---
{front}
---
# IRMAS instrument recogniser

Which of the 11 IRMAS instruments play in a recording. Three-band STFT (0-1, 1-4, 4-11.025 kHz) at
{model.sample_rate} Hz, one PANNs-style CNN tower per band (channels {first_width}
... {last_width}, on {frame_ms:.0f} ms frames), an MLP fusion and 11 sigmoid outputs; {params:,} parameters.{encoder}
Input is audio (any length; 3 s windows are averaged), so no feature files are needed.

## Labels
| code | instrument |
|---|---|
{labels}

Detection threshold: {model.threshold}.

## Training data
{training_data}

Licences of the training sources: FluidR3_GM and MuseScore_General (General MIDI sound banks) are MIT. The real
recorded notes, where used, are CC BY 3.0: tonejs-instruments by Nicholas Brosowsky (from VSCO 2 CE, Freesound,
Karoryfer and the University of Iowa collections) and the Salamander Grand Piano V3 by Alexander Holm. IRMAS,
where a model is trained on it, is CC BY-NC-SA 3.0 (non-commercial) and is not redistributed here.

## Results
{results.strip() or "Not recorded for this export."}

## Validation (epoch {epoch})
Same-source validation: a sanity check, not a forecast of what the model does on other sources.

| metric | value |
|---|---|
{metric_rows}

## Limitations
- It knows only these 11 instruments: drums, bass, synthesisers and everything else are never reported. Trained
  with sound of none of them (noise, hum, tones, speech, drums alone) it says so for such sound, but other
  sounds of no instrument can still raise some of them.
- A model trained on rendered audio (sound banks, not recordings) does markedly worse on sources it never heard:
  other sound banks, sample libraries, real instruments recorded with a microphone. Judge it by the figures on
  unheard sources above, not by its validation figures.
- 3 s windows: the timeline cannot resolve faster changes; the clip's figure is the windows' average.

## Intended use
Demonstrations and research on instrument recognition in short music excerpts.

## Use
```python
from irmas.model import InstrumentClassifier
from irmas.predict import predict_file
model = InstrumentClassifier.from_pretrained("owner/name", strict=True).eval()
print(predict_file(model, "song.wav").summary)
```

## Training config
```yaml
{config.strip()}
```
"""


def push(folder: str | os.PathLike, repo_id: str, revision: str | None = None, private: bool = False,
         token: str | None = None) -> str:
    """Upload a save_pretrained folder; token from the argument, $HF_TOKEN or `hf auth login`."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())  # refuse folders that are not a model
    if "labels" not in config or not (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder} is not an exported irmas model (config.json with labels + model.safetensors)")
    api = HfApi(token=token or os.environ.get("HF_TOKEN"))
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                               commit_message="Upload irmas model")
    return str(getattr(commit, "commit_url", commit))
