"""Which model to run: a local save_pretrained folder, a Hub repo (`owner/name@revision`), or the bundled one.

A named model that cannot be had (offline, missing repo, bad revision) never stops the app: we fall
back to the bundled checkpoint and say why, within a bounded time.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .model import InstrumentClassifier, for_inference
from .musicnn import HARMONICS, parse_encoder

NUMBERS = {2: "two", 3: "three", 4: "four"}
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
ENV_VAR = "IRMAS_MODEL"
HUB_TIMEOUT_S = 5  # per request
HUB_DEADLINE_S = float(os.environ.get("IRMAS_HUB_DEADLINE", 20))  # whole load, retries included


class ModelNotFoundError(RuntimeError):
    """Neither the named model nor the bundled one could be loaded."""


@dataclass
class LoadedModel:
    model: InstrumentClassifier
    source: str  # "bundled", "local" or "hub"
    name: str  # folder path or repo id
    revision: str | None = None
    fallback_reason: str | None = None  # set when a named model was not used
    trained_on: str | None = None  # the model card's `trained_on` phrase, where it has one

    def describe(self) -> str:
        """One sentence for people: which model it is, what it learnt from and, on fallback, why."""
        where = {"bundled": "the model that comes with the app", "local": f"the model from the folder "
                 f"{Path(self.name).name}", "hub": f"the Hub model {self.name}@{self.revision or 'main'}"}[self.source]
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        inputs = ["three frequency bands"]
        if self.model.encoder is not None:
            names = [name for name, _ in parse_encoder(self.model.encoder_name)]
            kinds = [("musicnn's VGG" if name.endswith("_vgg") else "musicnn") for name in names if name != HARMONICS]
            if kinds:  # MSD and MTT weights of one network read as one kind: "two musicnns"
                counts = {kind: kinds.count(kind) for kind in kinds}
                named = [kind if n == 1 else f"{NUMBERS.get(n, n)} {kind}s" for kind, n in counts.items()]
                inputs.append(f"{'networks' if len(kinds) > 1 else 'a network'} pretrained on real music "
                              f"({' and '.join(named)})")
            if HARMONICS in names:
                inputs.append("the harmonics of the notes' pitch")
        listens = ", to ".join(inputs[:-1]) + (", and to " if len(inputs) > 1 else "") + inputs[-1]
        text = (f"Using {where}: a {params:.1f} M-parameter network that listens to {listens}, "
                f"trained on {self.trained_on or 'data its model card does not name'}.")
        if self.fallback_reason:
            text += f" The requested model was not used: {self.fallback_reason}"
        return text


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`owner/name@rev` -> (`owner/name`, `rev`); no `@` -> revision None (the default branch)."""
    repo_id, _, revision = spec.partition("@")
    return repo_id, (revision or None)


def load_model(spec: str | None = None, bundled_dir: str | os.PathLike = BUNDLED_DIR) -> LoadedModel:
    """Resolve `spec` (or $IRMAS_MODEL) to a model ready to run, falling back to the bundled one.

    The model is prepared for inference (`model.for_inference`); to fine-tune, use
    `InstrumentClassifier.from_pretrained`.
    """
    spec = spec or os.environ.get(ENV_VAR) or None
    if spec is None:
        return _load_bundled(bundled_dir, None)
    if Path(spec).is_dir():
        try:
            model = _from_folder(spec)
        except Exception as err:  # noqa: BLE001 - a broken folder falls back like a missing repo
            return _load_bundled(bundled_dir, f"{spec} is not a loadable model folder ({err}).")
        return LoadedModel(for_inference(model), "local", str(spec), trained_on=trained_on(Path(spec) / "README.md"))
    repo_id, revision = parse_spec(spec)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        return _load_bundled(bundled_dir, f"{spec!r} is neither a folder nor a Hub repo id (owner/name[@revision]).")
    try:
        model, card = _from_hub(repo_id, revision)
    except Exception as err:  # noqa: BLE001 - network, auth, missing repo/revision, bad files: all fall back
        return _load_bundled(bundled_dir, f"could not load {spec} from the Hub ({_short(err)}).")
    return LoadedModel(for_inference(model), "hub", repo_id, revision, trained_on=trained_on(card))


def trained_on(card: Path | None) -> str | None:
    """The `trained_on` phrase of a model card's YAML front matter (None without a card or the key)."""
    if card is None or not card.is_file():
        return None
    from huggingface_hub import metadata_load

    try:
        value = (metadata_load(card) or {}).get("trained_on")
    except Exception:  # noqa: BLE001 - a card with broken YAML still leaves a usable model
        return None
    return str(value).strip() or None if value is not None else None


def _from_hub(repo_id: str, revision: str | None,
              deadline: float | None = None) -> tuple[InstrumentClassifier, Path | None]:
    """Load the model and its card from the Hub (or its cache), giving up after `deadline` seconds.

    huggingface_hub retries unreachable hosts with back-off for ~25 s; the load runs in a daemon
    thread so a slow or absent network costs at most the deadline.
    """
    import threading

    deadline = HUB_DEADLINE_S if deadline is None else deadline
    result: dict = {}

    def work():
        try:
            result["model"] = _download(repo_id, revision)
        except Exception as err:  # noqa: BLE001 - handed to the caller below
            result["error"] = err

    thread = threading.Thread(target=work, daemon=True, name="irmas-hub-load")
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise TimeoutError(f"no answer from the Hub within {deadline:g} s")
    if "error" in result:
        raise result["error"]
    return result["model"]


def _download(repo_id: str, revision: str | None) -> tuple[InstrumentClassifier, Path | None]:
    from huggingface_hub import constants, hf_hub_download

    # huggingface_hub reads these at call time; honour the user's own settings if they made any.
    if "HF_HUB_ETAG_TIMEOUT" not in os.environ:
        constants.HF_HUB_ETAG_TIMEOUT = HUB_TIMEOUT_S
    if "HF_HUB_DOWNLOAD_TIMEOUT" not in os.environ:
        constants.HF_HUB_DOWNLOAD_TIMEOUT = HUB_TIMEOUT_S
    model = InstrumentClassifier.from_pretrained(repo_id, revision=revision, strict=True)
    try:
        card = Path(hf_hub_download(repo_id, "README.md", revision=revision))
    except Exception:  # noqa: BLE001 - a repo without a card still has a usable model
        card = None
    return model, card


def _from_folder(folder: str | os.PathLike) -> InstrumentClassifier:
    # huggingface_hub prints a line on local loads; stdout belongs to our CLI's --json output.
    with contextlib.redirect_stdout(io.StringIO()):
        return InstrumentClassifier.from_pretrained(str(folder), strict=True)


def _load_bundled(bundled_dir: str | os.PathLike, reason: str | None) -> LoadedModel:
    bundled_dir = Path(bundled_dir)
    if not (bundled_dir / "model.safetensors").is_file():
        raise ModelNotFoundError(
            (reason + " " if reason else "") + f"No bundled model at {bundled_dir} (expected model.safetensors).")
    model = _from_folder(bundled_dir)
    return LoadedModel(for_inference(model), "bundled", str(bundled_dir), fallback_reason=reason,
                       trained_on=trained_on(bundled_dir / "README.md"))


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]
