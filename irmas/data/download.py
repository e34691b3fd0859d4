"""Download IRMAS from Zenodo (record 1290750) with pooch: md5-verified, resumable, unzipped.

IRMAS is CC BY-NC-SA 3.0 and may not be redistributed: it is fetched by each user, never committed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pooch
import requests

ZENODO_URL = "https://zenodo.org/record/1290750/files/{name}?download=1"
MIRROR_ENV = "IRMAS_MIRROR"  # a base URL holding the same file names (a local mirror, or tests)

# part: (archive, md5, folder it unpacks to)
PARTS: dict[str, tuple[str, str, str]] = {
    "train": ("IRMAS-TrainingData.zip", "4fd9f5ed5a18d8e2687e6360b5f60afe", "IRMAS-TrainingData"),
    "test1": ("IRMAS-TestingData-Part1.zip", "5a2e65520dcedada565dff2050bb2a56", "IRMAS-TestingData-Part1"),
    "test2": ("IRMAS-TestingData-Part2.zip", "afb0c8ea92f34ee653693106be95c895", "IRTestingData-Part2"),
    "test3": ("IRMAS-TestingData-Part3.zip", "9b3fb2d0c89cdc98037121c25bd5b556", "IRMAS-TestingData-Part3"),
}
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A part could not be fetched or failed its checksum (the bad file is already deleted)."""


def part_url(name: str, base_url: str | None = None) -> str:
    base = base_url or os.environ.get(MIRROR_ENV)
    return f"{base.rstrip('/')}/{name}" if base else ZENODO_URL.format(name=name)


def download_irmas(out: str | os.PathLike, parts: list[str], base_url: str | None = None,
                   progress: bool = True) -> dict[str, Path]:
    """Fetch, verify and unzip each part into `out`; returns part -> unpacked folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown IRMAS parts {unknown}; choose from {', '.join(PARTS)}")
    folders = {}
    for part in parts:
        name, md5, folder = PARTS[part]
        fetch_verified(part_url(name, base_url), f"md5:{md5}", out / name, progress,
                       processor=pooch.Unzip(extract_dir=str(out.resolve())))
        folders[part] = out / folder
        if progress:
            print(f"{part}: {name} verified and unpacked to {folders[part]}", file=sys.stderr)
    return folders


def fetch_verified(url: str, known_hash: str, path: Path, progress: bool = True, processor=None,
                   what: str | None = None) -> Path:
    """Download `url` to `path` unless a file with `known_hash` ("md5:...", "sha512:...") is there already.

    Resumable; a file failing its checksum is deleted, and every failure is a DownloadError naming `what`.
    Returns `path` (a `processor`, such as pooch.Unzip, leaves its output beside it).
    """
    what = what or path.name
    part_file = path.with_name(path.name + ".part")
    try:
        pooch.retrieve(url, known_hash=known_hash, fname=path.name, path=path.parent, processor=processor,
                       downloader=ResumableDownloader(part_file, progress))
        return path
    except ValueError as err:  # pooch's checksum mismatch; it has removed the download
        part_file.unlink(missing_ok=True)
        raise DownloadError(f"{what}: checksum mismatch, the downloaded file was deleted; run again to "
                            f"retry ({err})") from None
    except requests.RequestException as err:
        raise DownloadError(f"{what}: download failed ({err}); run again to resume") from None


class ResumableDownloader:
    """A pooch downloader that keeps a `.part` file and continues it with an HTTP Range request.

    pooch writes to a temporary name of its own, so the partial download is kept beside it under a
    stable name; a server that ignores Range just sends the whole file again.
    """

    def __init__(self, part_file: Path, progress: bool = True, timeout: float = 60.0):
        self.part_file, self.progress, self.timeout = Path(part_file), progress, timeout

    def __call__(self, url: str, output_file, pooch_obj=None, check_only: bool = False):
        if check_only:
            return requests.head(url, timeout=self.timeout, allow_redirects=True).ok
        have = self.part_file.stat().st_size if self.part_file.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code == 416:  # the .part is already complete
                response.close()
            else:
                response.raise_for_status()
                if response.status_code != 206:
                    have = 0  # no Range support: start over
                total = have + int(response.headers.get("Content-Length", 0))
                from tqdm import tqdm
                with open(self.part_file, "ab" if have else "wb") as f, tqdm(
                        total=total or None, initial=have, unit="B", unit_scale=True, desc=Path(output_file).name,
                        disable=not self.progress, file=sys.stderr) as bar:
                    for chunk in response.iter_content(CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
        shutil.move(self.part_file, output_file)
