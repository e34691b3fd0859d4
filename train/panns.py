"""The PANNs Cnn14 AudioSet checkpoint: fetched once with pooch into a cache folder, checked by size."""

from __future__ import annotations

import os
from pathlib import Path

import pooch

PANNS_URL = "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"
PANNS_FILE = "Cnn14_mAP=0.431.pth"
PANNS_BYTES = 327_428_481
PANNS_HASH: str | None = None  # md5 not published with the record; size is checked until one is pinned
CACHE_DIR = Path(os.environ.get("IRMAS_CACHE", Path.home() / ".cache" / "irmas"))


class PannsUnavailableError(RuntimeError):
    """The checkpoint could not be had; the message says how to get it by hand."""


def fetch_panns(source: str | os.PathLike | None = None, cache_dir: str | os.PathLike = CACHE_DIR,
                url: str = PANNS_URL, expected_bytes: int = PANNS_BYTES) -> Path:
    """A local path given in the config is used as is; otherwise download into the cache once."""
    if source and Path(source).is_file():
        return Path(source)
    if source and not str(source).startswith(("http://", "https://")):
        raise PannsUnavailableError(f"PANNs checkpoint {source} does not exist. {_HOW_TO}")
    cache_dir = Path(cache_dir)
    try:
        path = Path(pooch.retrieve(source or url, known_hash=PANNS_HASH, fname=PANNS_FILE, path=cache_dir,
                                   progressbar=True))
    except Exception as err:  # noqa: BLE001 - any network failure gets the same advice
        raise PannsUnavailableError(f"could not download the PANNs checkpoint ({err}). {_HOW_TO}") from None
    if path.stat().st_size != expected_bytes:
        size = path.stat().st_size
        path.unlink()
        raise PannsUnavailableError(f"{path.name} has {size} bytes, expected {expected_bytes}; deleted. {_HOW_TO}")
    return path


_HOW_TO = (f"Download {PANNS_FILE} ({PANNS_BYTES:,} bytes) from Zenodo record 3987831 and either put it at "
           f"{CACHE_DIR / PANNS_FILE} or set `model.panns_checkpoint: /path/to/{PANNS_FILE}` in the config.")
