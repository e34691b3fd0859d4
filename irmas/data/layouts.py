"""The two IRMAS folder layouts, read into lists of labelled files.

Training layout: `<root>/<code>/...[<code>][<drums>][<genre>]<recording>__<n>.wav`; the label is the
folder. Tags after the first are drums (`dru`/`nod`) and genre (`cla` there is *classical*, not
clarinet): metadata, never instruments. Testing layout: `<name>.wav` beside `<name>.txt` holding one
instrument code per line.
"""

from __future__ import annotations

import random
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..labels import CODES

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
DRUM_TAGS = {"dru": True, "nod": False}
_TAG = re.compile(r"\[([^\]]+)\]")


@dataclass
class Example:
    path: Path
    labels: list[str]  # one for the training layout, one or more for the testing layout
    group: str = ""  # source recording: excerpts of one recording stay on one side of a split
    drums: bool | None = None
    genre: str | None = None
    extra: dict = field(default_factory=dict)


def detect_layout(root: str | Path) -> str:
    """'training' (class folders) or 'testing' (.wav + .txt pairs); ValueError if neither."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder.")
    if any(p.with_suffix(".txt").is_file() for p in _audio_files(root)):
        return "testing"
    if any((root / code).is_dir() for code in CODES) or any(
            (d / code).is_dir() for d in root.iterdir() if d.is_dir() for code in CODES):
        return "training"
    raise ValueError(f"{root}: neither IRMAS layout (no <code>/ folders, no .wav files with .txt labels).")


def read_layout(root: str | Path) -> tuple[str, list[Example]]:
    layout = detect_layout(root)
    return layout, (read_training(root) if layout == "training" else read_testing(root))


def read_training(root: str | Path) -> list[Example]:
    """Every audio file under `<root>/<code>/` (or one level deeper, as the IRMAS zip unpacks)."""
    root = Path(root)
    if not any((root / c).is_dir() for c in CODES):
        nested = [d for d in sorted(root.iterdir()) if d.is_dir() and any((d / c).is_dir() for c in CODES)]
        if nested:
            root = nested[0]
    examples = []
    for code in CODES:
        for path in sorted(p for p in (root / code).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            examples.append(parse_training_name(path, code))
    return examples


def parse_training_name(path: Path, code: str) -> Example:
    tags = _TAG.findall(path.name)
    drums = next((DRUM_TAGS[t] for t in tags[1:] if t in DRUM_TAGS), None)
    genre = next((t for t in tags[1:] if t not in DRUM_TAGS), None)
    group = re.sub(r"__\d+$", "", path.stem)  # "[cel][nod][cla]0058__2" -> "[cel][nod][cla]0058"
    return Example(path, [code], group=f"{code}/{group}", drums=drums, genre=genre)


def read_testing(root: str | Path) -> list[Example]:
    """Audio files with a label file beside them; unknown codes are warned about and dropped."""
    examples = []
    for path in _audio_files(Path(root)):
        txt = path.with_suffix(".txt")
        if not txt.is_file():
            continue
        codes = [line.strip()[:3] for line in txt.read_text(errors="replace").splitlines() if line.strip()]
        unknown = [c for c in codes if c not in CODES]
        if unknown:
            warnings.warn(f"{txt}: unknown instrument codes {unknown} ignored")
        labels = sorted({c for c in codes if c in CODES}, key=CODES.index)
        if labels:
            examples.append(Example(path, labels, group=path.stem))
    return examples


def split_by_recording(examples: list[Example], val_fraction: float = 0.15,
                       seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Train/validation split, stratified by class, that never splits one source recording."""
    by_class: dict[str, dict[str, list[Example]]] = defaultdict(lambda: defaultdict(list))
    for ex in examples:
        by_class[ex.labels[0]][ex.group].append(ex)
    rng = random.Random(seed)
    train, val = [], []
    for code in sorted(by_class):
        groups = sorted(by_class[code])
        rng.shuffle(groups)
        total = sum(len(by_class[code][g]) for g in groups)
        taken = 0
        for g in groups:
            side = val if taken < val_fraction * total and len(groups) > 1 else train
            side.extend(by_class[code][g])
            if side is val:
                taken += len(by_class[code][g])
    return train, val


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
