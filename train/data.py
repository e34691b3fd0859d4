"""IRMAS-layout folders -> in-memory 3 s clips at the model's sample rate, for Lightning.

Clips are decoded once (IRMAS training data is ~1 h of audio: ~0.6 GB as float32 at 22.05 kHz), so
the loader only indexes memory and never limits the training step. Augmentation happens on batches
inside the system, where it is cheap and identical on every device.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DistributedSampler, TensorDataset
from torchdata.stateful_dataloader import StatefulDataLoader
from tqdm import tqdm

from irmas.audio import SAMPLE_RATE, AudioError, load_audio
from irmas.data.layouts import Example, read_testing, read_training, split_by_recording
from irmas.labels import CODES
from irmas.memory import keep_freed_memory, release_freed_memory
from irmas.predict import WINDOW_SECONDS, frame_windows, normalize

CLIP_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)
GATHER_ROWS = 1024  # clips per process in one all-gather of encoder outputs
SHARED_MEMORY = Path("/dev/shm")  # tmpfs where the DDP processes of one machine keep a single copy of the clips


PCM_SCALE = 32767  # clips are held as 16-bit PCM of the peak-normalised audio (from 16-bit files: no loss)


def load_clips(examples: list[Example], desc: str = "load", whole: bool | list[bool] = False,
               origins: list[int] | None = None, spare_rows: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Decode, normalise and fit each file to 3 s; returns int16 waveforms (`as_float` turns a batch back into
    float32), multi-hot targets and the number of files skipped. `spare_rows`: that many zero rows after the
    files' clips, for clips made from them later (adding rows afterwards would copy every clip).

    `whole` (for all files, or one flag per file): cut a file into every consecutive 3 s clip instead (a
    multi-label excerpt of 5-20 s gives 1-6 clips, all with its labels). `origins`, if given, gets the index of
    each clip's example.
    """
    # One preallocated array for every source (sized from the files' headers), in 16 bits: concatenating
    # sources or stacking a list of clips held them twice, and two DDP processes holding ~31,000 float32
    # clips each (8 GB) ran out of 24 GB.
    flags = whole if isinstance(whole, list) else [whole] * len(examples)
    counts = [_clip_count(ex.path, w) for ex, w in zip(examples, flags)]
    waves = np.zeros((sum(counts) + spare_rows, CLIP_SAMPLES), dtype=np.int16)
    targets = np.zeros((len(waves), len(CODES)), dtype=np.float32)
    n, skipped = 0, 0
    for index, (ex, cut) in enumerate(tqdm(list(zip(examples, flags)), desc=desc, unit="file", leave=False)):
        try:
            y = normalize(load_audio(ex.path))
        except AudioError as err:
            warnings.warn(f"skipped {ex.path}: {err}")
            skipped += 1
            continue
        # cut at a whole number of clips, so frame_windows adds no overlapping tail window
        keep = max(1, len(y) // CLIP_SAMPLES) * CLIP_SAMPLES if cut else CLIP_SAMPLES
        clips, _ = frame_windows(y[:keep], CLIP_SAMPLES, CLIP_SAMPLES)
        if n + len(clips) > len(waves) - spare_rows:  # a header that undercounted: grow (rare, costs one copy)
            more = n + len(clips) + spare_rows - len(waves)
            waves = np.concatenate([waves, np.zeros((more, CLIP_SAMPLES), np.int16)])
            targets = np.concatenate([targets, np.zeros((len(waves) - len(targets), len(CODES)), np.float32)])
        waves[n:n + len(clips)] = np.round(clips * PCM_SCALE)
        targets[n:n + len(clips), [CODES.index(c) for c in ex.labels]] = 1.0
        n += len(clips)
        if origins is not None:
            origins.extend([index] * len(clips))
    if skipped:
        warnings.warn(f"{skipped} of {len(examples)} files could not be read and were skipped")
    waves[n:n + spare_rows] = 0  # rows a header overcounted, now spare
    targets[n:n + spare_rows] = 0
    return torch.from_numpy(waves[:n + spare_rows]), torch.from_numpy(targets[:n + spare_rows]), skipped


def as_float(waves: torch.Tensor) -> torch.Tensor:
    """int16 clips from `load_clips` -> float32 in [-1, 1]."""
    return waves.float() / PCM_SCALE


def _all_gather_rows(mine: torch.Tensor, rows_of: list[torch.Tensor], out: torch.Tensor) -> None:
    """`out[rows_of[r]] = ` DDP process r's `mine`, for every process r, GATHER_ROWS rows of each at a time: the
    first mid-end layer's outputs of every clip are 0.9 GB and the clips 5 GB, and gathering them whole held three
    copies in each process."""
    import torch.distributed as dist

    for start in range(0, max(len(rows) for rows in rows_of), GATHER_ROWS):
        piece = torch.zeros((GATHER_ROWS, *mine.shape[1:]), dtype=mine.dtype)
        own = mine[start:start + GATHER_ROWS]
        piece[:len(own)] = own
        gathered = [torch.zeros_like(piece) for _ in rows_of]
        # as bytes: gloo gathers no int16
        dist.all_gather([part.view(torch.uint8) for part in gathered], piece.view(torch.uint8))
        for part, rows in zip(gathered, rows_of):
            rows = rows[start:start + GATHER_ROWS]
            out[rows] = part[:len(rows)]


def _encoder_model(encoder: str, noise_db: float | None):
    """A model to compute encoder embeddings with, built without drawing from the global random generator (a module's
    initial weights do): training draws its augmentation and dropout from it after `setup`, so how the data module
    computes embeddings must not move them."""
    from irmas.model import InstrumentClassifier

    with torch.random.fork_rng(devices=[]):
        return InstrumentClassifier(tower_channels=[1], encoder=encoder, encoder_noise_db=noise_db)


def collate(batch: list[tuple[torch.Tensor, ...]]) -> list[torch.Tensor]:
    """Stack a batch of (clip, targets[, embedding]) and turn the int16 clips into float32."""
    columns = [torch.stack(column) for column in zip(*batch)]
    return [as_float(columns[0]), *columns[1:]]


def _clip_count(path: Path, whole: bool) -> int:
    """How many clips `load_clips` will cut from a file, from its header (1 when it cannot tell)."""
    if not whole:
        return 1
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return 1
    samples = int(np.ceil(info.frames * SAMPLE_RATE / info.samplerate))
    return max(1, samples // CLIP_SAMPLES)


TILT_PIVOT_HZ = 1000.0  # the tilt leaves this frequency as it is
TILT_LOW_HZ = 50.0  # below this the gain stays that of TILT_LOW_HZ
TILT_MAX_DB = 18.0  # the largest boost or cut anywhere


def _clip_rng(clip: torch.Tensor, seed: int, purpose: str) -> np.random.Generator:
    """Random numbers that follow from a clip's samples, the seed and what they are for alone, so every fold
    and run that holds the clip draws the same ones (and the embedding cache serves them all)."""
    digest = hashlib.blake2b(clip.numpy().tobytes(), digest_size=8, key=f"{purpose}{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def tilt_clips(waves: torch.Tensor, share: float, max_slope: float, seed: int) -> torch.Tensor:
    """A `share` of the int16 clips through a random spectral tilt (up to `max_slope` dB per octave either way,
    about 1 kHz), peak-normalised again: the same instrument recorded brighter or duller. Done on the stored
    clips (not on batches) so the encoder branch's embeddings, computed once, hear it too. In place (returns
    `waves`): a copy of every clip would double the memory training holds."""
    hz = torch.fft.rfftfreq(waves.shape[1], 1 / SAMPLE_RATE).clamp_min(TILT_LOW_HZ)
    octaves = torch.log2(hz / TILT_PIVOT_HZ)
    for i, clip in enumerate(waves):
        rng = _clip_rng(clip, seed, "tilt")
        if rng.random() >= share:
            continue
        gain_db = (rng.uniform(-max_slope, max_slope) * octaves).clamp(-TILT_MAX_DB, TILT_MAX_DB)
        y = torch.fft.irfft(torch.fft.rfft(clip.double()) * 10 ** (gain_db / 20), n=waves.shape[1])
        peak = y.abs().max()
        if peak > 0:
            waves[i] = torch.round(y / peak * PCM_SCALE).to(torch.int16)
    return waves


def quantized_indices(waves: torch.Tensor, share: float, seed: int) -> list[int]:
    """The clips `quantize_clips` stores as coarse files, for the same `share` and `seed` (its first draw)."""
    return [i for i, clip in enumerate(waves) if _clip_rng(clip, seed, "quantize").random() < share]


def quantize_clips(waves: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """A `share` of the int16 clips as an 8-bit file (peak -6..0 dBFS) or a quietly recorded 16-bit one
    (-66..-30 dBFS: a few dozen sample values) holds them, peak-normalised again as prediction does. Stored
    clips, so the encoder branch hears such files too (the system's `quantize_prob` reaches the towers only). In
    place (returns `waves`), as `tilt_clips`."""
    for i, clip in enumerate(waves):
        rng = _clip_rng(clip, seed, "quantize")
        if rng.random() >= share:
            continue
        eight_bit = rng.random() < 0.5
        level_db = -6 * rng.random() if eight_bit else -30 - 36 * rng.random()
        steps = (128.0 if eight_bit else 32768.0) * 10 ** (level_db / 20)
        stored = np.round(clip.numpy() / PCM_SCALE * steps)
        peak = np.abs(stored).max()
        if peak > 0:
            waves[i] = torch.from_numpy(np.round(stored / peak * PCM_SCALE).astype(np.int16))
    return waves


def noise_clips(waves: torch.Tensor, share: float, snr_db: tuple[float, float], seed: int) -> torch.Tensor:
    """A `share` of the int16 clips with background noise mixed in, as a room, a fan or a preamp adds it to a real
    recording: noise of power spectrum 1/f^b (b drawn from 0 to 2: white to brown) at a signal-to-noise ratio
    drawn from `snr_db` (clip RMS against noise RMS), peak-normalised again. Labels stay: the instruments are
    still there. Stored clips, so the encoder branch hears them too. In place (returns `waves`), as `tilt_clips`."""
    n = waves.shape[1]
    hz = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    hz[0] = hz[1]
    for i, clip in enumerate(waves):
        rng = _clip_rng(clip, seed, "noise")
        if rng.random() >= share:
            continue
        y = clip.numpy().astype(np.float64)
        spectrum = np.fft.rfft(rng.standard_normal(n)) * hz ** (-rng.uniform(0.0, 2.0) / 2)
        noise = np.fft.irfft(spectrum, n)
        signal_rms, noise_rms = np.sqrt(np.mean(y ** 2)), np.sqrt(np.mean(noise ** 2))
        if signal_rms == 0:
            continue
        y = y + noise * signal_rms / noise_rms * 10 ** (-rng.uniform(*snr_db) / 20)
        waves[i] = torch.from_numpy(np.round(y / np.abs(y).max() * PCM_SCALE).astype(np.int16))
    return waves


class EpochShuffle(DistributedSampler):
    """A shuffled order that is a function of (seed, epoch), with its position in a checkpointable state.

    Lightning calls `set_epoch` at every epoch start; StatefulDataLoader stores `state_dict()` in
    checkpoints, so a run killed mid-epoch resumes with the same epoch's order at the next sample.
    Under DDP each process takes every `world_size`-th index of that order. It is a DistributedSampler
    so that Lightning uses it as it is: the wrapper Lightning puts around other samplers resumes a
    killed run in the first epoch's order.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1):
        super().__init__(range(n), num_replicas=world_size, rank=rank, seed=seed, drop_last=True)
        self.yielded, self._resume_at = 0, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "yielded": self.yielded}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self._resume_at = state["epoch"], state["yielded"]

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.dataset), generator=generator)[:self.total_size].tolist()
        shard = order[self.rank::self.num_replicas]  # equal shards: every process takes as many steps
        self.yielded, self._resume_at = self._resume_at, 0
        for index in shard[self.yielded:]:
            self.yielded += 1
            yield index


class EmbeddingCache:
    """Encoder embeddings of clips on disk, keyed by a hash of the clip's 16-bit samples, per encoder layer and
    `musicnn.network_version` (weights, front-end and network code), so changed weights or code never return stale
    embeddings, and edits elsewhere keep them. No pickle: `.npz` shards, `<encoder>-<version>.npz` and then
    `<encoder>-<version>.<n>.npz`, one a run adds with the clips it encoded. A run reads only the clips it asks for
    and writes only its new ones: the cache grows with every fold and seed (1.7 GB of first mid-end outputs after
    six folds), and holding or rewriting all of it in each DDP process ran a 24 GB machine out of memory."""

    def __init__(self, folder: str | Path, encoder: str, noise_db: float | None = None, first_midend: bool = False):
        """`first_midend`: the cache of the network's first mid-end layer outputs (float16), not its embeddings."""
        from irmas import harmonics, musicnn

        if encoder == musicnn.HARMONICS:
            version = harmonics.VERSION
        else:
            version = musicnn.network_version(encoder.partition("/")[0])
        floor = "" if noise_db is None else f"-noise{noise_db:g}dB{musicnn.NOISE_FLOOR_SEED}"
        what = encoder.replace("/", "-") if not first_midend else f"{encoder.partition('/')[0]}-midend1"
        self.path = Path(folder) / f"{what}-{version[:12]}{floor}.npz"  # the first shard

    def shards(self) -> list[Path]:
        """The cache's files, oldest first (a later one's entry for a clip wins)."""
        added = self.path.parent.glob(f"{self.path.stem}.*.npz")
        added = sorted(p for p in added if p.stem.rpartition(".")[2].isdigit())  # not a .partial being written
        return ([self.path] if self.path.exists() else []) + added

    @staticmethod
    def key(clip: torch.Tensor) -> str:
        return hashlib.blake2b(clip.numpy().tobytes(), digest_size=16).hexdigest()

    def load(self, keys: set[str] | None = None) -> dict[str, np.ndarray]:
        """key -> embedding of every stored clip, or of those of `keys` that are stored."""
        found: dict[str, np.ndarray] = {}
        for shard in self.shards():
            with np.load(shard, allow_pickle=False) as stored:
                names = stored["keys"].tolist()
                rows = [i for i, name in enumerate(names) if keys is None or name in keys]
                if rows:
                    found.update(zip((names[i] for i in rows), stored["embeddings"][rows]))
        return found

    def save(self, embeddings: dict[str, np.ndarray]) -> None:
        """Add these clips' entries as a new shard."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        path = self.path
        if path.exists():
            taken = [int(shard.stem.rpartition(".")[2]) for shard in self.shards()[1:]]
            path = path.with_name(f"{path.stem}.{max(taken, default=0) + 1:04d}.npz")
        partial = path.with_name(path.stem + ".partial.npz")
        np.savez(partial, keys=np.array(list(embeddings), dtype="U32"),
                 embeddings=np.stack(list(embeddings.values())))
        partial.replace(path)


def source_mixtures(waves: torch.Tensor, targets: torch.Tensor, sources: torch.Tensor, n: int, seed: int,
                    out: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` new clips, each 2 or 3 single-label clips of different classes summed at equal loudness (within
    +-3 dB), drawn from different sources where there are several, with the union of their labels. The rendered
    excerpts play every instrument from one bank; here a sample set's cello meets a General MIDI bank's piano,
    so no instrument can be told by the company it keeps. `sources`: each clip's source index, -1 for clips
    not to draw from. Returns (int16 clips, multi-hot targets), written into `out` where given (n rows each)."""
    rng = np.random.default_rng([seed, n])
    classes = targets.argmax(1).numpy()
    source = sources.numpy()
    by_source_class = {(s, c): np.flatnonzero((source == s) & (classes == c)) for s in np.unique(source[source >= 0])
                       for c in np.unique(classes)}
    by_source_class = {k: v for k, v in by_source_class.items() if len(v)}
    out_x, out_y = out or (torch.empty((n, waves.shape[1]), dtype=torch.int16),
                           torch.zeros((n, targets.shape[1]), dtype=targets.dtype))
    for k in range(n):
        parts, used_sources, used_classes = [], set(), set()
        for _ in range(int(rng.choice([2, 3], p=[0.6, 0.4]))):
            keys = [key for key in by_source_class if key[1] not in used_classes]
            fresh = [key for key in keys if key[0] not in used_sources]
            keys = fresh or keys
            if not keys:
                break
            s, c = keys[int(rng.integers(len(keys)))]
            parts.append(int(rng.choice(by_source_class[(s, c)])))
            used_sources.add(s)
            used_classes.add(c)
        mix = np.zeros(waves.shape[1])
        for i in parts:
            y = waves[i].numpy().astype(np.float64)
            rms = np.sqrt(np.mean(y ** 2))
            if rms > 0:
                mix += y / rms * 10 ** (rng.uniform(-3, 3) / 20)
        peak = np.abs(mix).max()
        if peak > 0:
            out_x[k] = torch.from_numpy(np.round(mix / peak * PCM_SCALE).astype(np.int16))
        out_y[k] = targets[parts].amax(0)
    return out_x, out_y


class IrmasDataModule(L.LightningDataModule):
    """Training-layout folders (real IRMAS or rendered). Validation: `val_dirs` if given (e.g. another
    sound bank, to measure generalisation), else a recording-disjoint split of the training folders.

    `mixture_dirs`: testing-layout folders of rendered multi-instrument excerpts, cut into 3 s clips and
    added to training, so the model also learns from instruments playing together in one key and room
    (never the excerpts it is evaluated on). `negative_dirs`: folders of audio that holds none of the
    classes (`python -m irmas data negatives`), trained with all-zero targets. `encoder`: the model's fixed
    encoder branch (irmas.musicnn); its embedding of every clip is computed once here, split over the DDP
    processes, and batches carry it as a third tensor, so training runs the encoder once, not every epoch.
    `embedding_cache`: a folder where those embeddings are kept between runs (leave-one-source-out folds and
    the final model encode the same clips). `tilt_share`: share of the training clips stored through a random
    spectral tilt of up to `tilt_slope` dB per octave (`tilt_clips`), before their embeddings are computed;
    `quantize_share`: share stored as 8-bit or quiet 16-bit files hold them (`quantize_clips`), likewise;
    `noise_share`: share stored with background noise at `noise_snr_db` (`noise_clips`), likewise.
    `source_mixtures`: how many clips of 2-3 solo training clips from different `train_dirs` summed
    (`source_mixtures`) to add to training. `float_embeddings`: batches also carry, as a fourth tensor, the
    encoder's embedding of each clip as it was before `quantize_clips` (the system's `consistency` loss).
    `encoder_noise_db`: the model's noise floor under the encoder (set from it by the CLI). `midend_inputs`:
    batches also carry, as a fourth tensor, each clip's first mid-end layer output of the encoder's musicnn (the
    system's `midend_lr` fine-tunes the layers above it; set from it by the CLI), cached beside the embeddings.
    """

    def __init__(self, train_dirs: list[str], val_dirs: list[str] | None = None, val_fraction: float = 0.15,
                 batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 mixture_dirs: list[str] | None = None, negative_dirs: list[str] | None = None,
                 encoder: str | None = None, embedding_cache: str | None = None,
                 tilt_share: float = 0.0, tilt_slope: float = 3.0, quantize_share: float = 0.0,
                 noise_share: float = 0.0, noise_snr_db: tuple[float, float] = (10.0, 40.0),
                 source_mixtures: int = 0, float_embeddings: bool = False, encoder_noise_db: float | None = None,
                 midend_inputs: bool = False):
        super().__init__()
        if midend_inputs and float_embeddings:
            raise ValueError("midend_inputs and float_embeddings each fill the batches' fourth tensor: use one")
        if float_embeddings and not (encoder and quantize_share > 0):
            raise ValueError("float_embeddings pairs clips stored by quantize_share with their originals, as the "
                             "encoder hears them: it needs an encoder and quantize_share > 0")
        self.save_hyperparameters()
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.train_sources: torch.Tensor | None = None  # each training clip's index in train_dirs; -1: the others

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        examples = [ex for d in hp.train_dirs for ex in read_training(Path(d))]
        if not examples:
            raise FileNotFoundError(f"no IRMAS training-layout audio under {hp.train_dirs}")
        if hp.val_dirs:
            train, val = examples, [ex for d in hp.val_dirs for ex in read_training(Path(d))]
        else:
            train, val = split_by_recording(examples, hp.val_fraction, hp.seed)
        mixtures, negatives = [], []
        if hp.mixture_dirs:
            mixtures = [ex for d in hp.mixture_dirs for ex in read_testing(Path(d))]
            if not mixtures:
                raise FileNotFoundError(f"no testing-layout excerpts (audio + .txt) under {hp.mixture_dirs}")
        if hp.negative_dirs:
            negatives = [Example(p, []) for d in hp.negative_dirs for p in sorted(Path(d).rglob("*"))
                         if p.suffix.lower() in (".wav", ".flac", ".ogg")]
            if not negatives:
                raise FileNotFoundError(f"no audio under {hp.negative_dirs}")
        origins: list[int] = []
        x, y, shared = self._load(train + mixtures + negatives, "load train", origins=origins,
                                  spare_rows=hp.source_mixtures,
                                  whole=[False] * len(train) + [True] * len(mixtures) + [False] * len(negatives))
        # Clips that every process maps: the mixtures are written by one process, and each process changes every
        # world-th clip after that, the others waiting where a step needs them all (`_settled`). The random numbers
        # of each change follow from the clip alone, so one process or two store the same clips.
        rank, world = self._shard()
        mine = x[rank::world] if shared else x
        dirs = [Path(d).resolve() for d in hp.train_dirs]
        of_example = [next((i for i, d in enumerate(dirs) if d in ex.path.resolve().parents), -1) for ex in train]
        source = torch.tensor([of_example[o] if o < len(train) else -1 for o in origins], dtype=torch.long)
        if hp.source_mixtures > 0:  # into the spare rows after the loaded clips
            loaded = len(origins)
            if rank == 0 or not shared:
                source_mixtures(x[:loaded], y[:loaded], source, hp.source_mixtures, hp.seed,
                                out=(x[loaded:], y[loaded:]))
            if shared:  # the targets are each process's own
                import torch.distributed as dist

                dist.broadcast(y[loaded:], src=0)
            source = torch.cat([source, torch.full((hp.source_mixtures,), -1)])
        self.train_sources = source
        self._settled(shared)
        if hp.tilt_share > 0:
            tilt_clips(mine, hp.tilt_share, hp.tilt_slope, hp.seed)
        if hp.noise_share > 0:
            noise_clips(mine, hp.noise_share, tuple(hp.noise_snr_db), hp.seed)
        self._settled(shared)
        stored, originals = [], []
        if hp.quantize_share > 0:
            if hp.float_embeddings:  # embedded before quantize_clips replaces them
                stored = quantized_indices(x, hp.quantize_share, hp.seed)
                originals = self._encoded(x, stored)
                self._settled(shared)
            quantize_clips(mine, hp.quantize_share, hp.seed)
            self._settled(shared)
        val_x, val_y, _ = self._load(val, "load val")
        # From here on every batch allocates what the last one freed: keep it rather than fault it in again (the
        # arrays of every clip above come and go from the system whole, which kept the heap from fragmenting).
        keep_freed_memory()
        encoded = self._encoded(x)
        if originals:  # the clips left alone are their own original
            originals = [encoded[0].index_copy(0, torch.tensor(stored, dtype=torch.long), originals[0][stored])]
        self.train_set = TensorDataset(x, y, *encoded, *originals)
        self.val_set = TensorDataset(val_x, val_y, *self._encoded(val_x))
        release_freed_memory()  # what encoding freed (the cache's arrays, the gathers) goes back, not kept to the end

    def _shared_clips(self, rows: int) -> torch.Tensor | None:
        """(rows, CLIP_SAMPLES) int16 zeros that every DDP process of this machine maps, or None with one process,
        over several machines, or where the shared memory has no room (Docker gives 64 MB): two private copies of
        the training clips were 12 GB of a 24 GB machine. The file is unlinked once mapped; the memory goes when
        the last process ends."""
        rank, world = self._shard()
        if world == 1 or self.trainer.num_nodes > 1 or rows == 0:
            return None
        import torch.distributed as dist

        size = rows * CLIP_SAMPLES * 2
        plan = [f"irmas-clips-{uuid.uuid4().hex}" if SHARED_MEMORY.is_dir() and
                shutil.disk_usage(SHARED_MEMORY).free > 1.1 * size else None] if rank == 0 else [None]
        dist.broadcast_object_list(plan, src=0)
        if plan[0] is None:
            warnings.warn(f"{SHARED_MEMORY} has no room for {size / 1e9:.1f} GB of clips: each DDP process keeps "
                          "its own")
            return None
        path = SHARED_MEMORY / plan[0]
        if rank == 0:
            with open(path, "wb") as file:
                file.truncate(size)  # zeros, in memory only once written
        dist.barrier()
        shared = torch.from_file(str(path), shared=True, size=rows * CLIP_SAMPLES, dtype=torch.int16)
        dist.barrier()
        if rank == 0:
            path.unlink()
        return shared.view(rows, CLIP_SAMPLES)

    def _settled(self, shared: bool) -> None:
        """Wait until every process is done with the shared clips (`_shared_clips`), if they are shared."""
        if shared:
            import torch.distributed as dist

            dist.barrier()

    def _load(self, examples: list[Example], desc: str, whole: bool | list[bool] = False,
              origins: list[int] | None = None, spare_rows: int = 0) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """`load_clips` (waveforms, targets) and whether the waveforms are shared (`_shared_clips`). Each DDP process
        decodes every world-th file, in half the minute the decoding takes, and writes its clips into the shared
        ones, or where they cannot be shared all of them gather every clip: the same clips in the same order."""
        rank, world = self._shard()
        if world == 1:
            return (*load_clips(examples, desc, whole, origins, spare_rows)[:2], False)
        import torch.distributed as dist

        flags = whole if isinstance(whole, list) else [whole] * len(examples)
        mine, mine_origins = list(range(rank, len(examples), world)), []
        waves, _, _ = load_clips([examples[i] for i in mine], desc, [flags[i] for i in mine], mine_origins)
        counts = torch.zeros(len(examples), dtype=torch.long)  # clips cut from each file (0: it could not be read)
        counts.index_add_(0, torch.tensor([mine[o] for o in mine_origins], dtype=torch.long),
                          torch.ones(len(mine_origins), dtype=torch.long))
        dist.all_reduce(counts)
        file_of_row = torch.repeat_interleave(torch.arange(len(examples)), counts)
        rows_of = [torch.nonzero(file_of_row % world == r).flatten() for r in range(world)]
        out = self._shared_clips(len(file_of_row) + spare_rows)
        shared = out is not None
        if shared:
            out[rows_of[rank]] = waves
            dist.barrier()
        else:
            out = torch.zeros((len(file_of_row) + spare_rows, CLIP_SAMPLES), dtype=torch.int16)
            _all_gather_rows(waves, rows_of, out)
        del waves
        targets = torch.zeros((len(out), len(CODES)))
        for i, (ex, first) in enumerate(zip(examples, (torch.cumsum(counts, 0) - counts).tolist())):
            targets[first:first + counts[i], [CODES.index(c) for c in ex.labels]] = 1.0
        if origins is not None:
            origins.extend(file_of_row.tolist())
        return out, targets, shared

    def _encoded(self, waves: torch.Tensor, only: list[int] | None = None) -> list[torch.Tensor]:
        """[the encoder's embedding of each clip] (and with `midend_inputs` the first mid-end layer outputs of its
        musicnn), or [] without an encoder. Each network's part (the encoder joins them with "+") is cached on its
        own, so recipes that share a network share its cache. Clips already in the `embedding_cache` are read from
        it; the rest are computed, each process its share, with one log-mel for every network that lacks them.
        `only`: embed these clips alone; the other rows are zeros."""
        from irmas.musicnn import LAYER_DIMS, parse_encoder

        hp = self.hparams
        if not hp.encoder:
            return []
        specs, noise_db, folder = hp.encoder.split("+"), hp.encoder_noise_db, hp.embedding_cache
        layers = [layer for _, layer in parse_encoder(hp.encoder)]
        model = _encoder_model(hp.encoder, noise_db)
        tunable = {id(net) for net, _ in model.encoder.tunable_midends()}
        firsts = [bool(hp.midend_inputs) and id(net) in tunable for net in model.encoder.networks]
        if hp.midend_inputs and not any(firsts):
            raise ValueError(f"midend_inputs: no musicnn's /pooled in encoder {hp.encoder!r}")
        wanted = list(range(len(waves))) if only is None else list(only)
        caches = [[EmbeddingCache(folder, spec, noise_db, first_midend=f) for f in (False, True)[:1 + first]]
                  if folder else [] for spec, first in zip(specs, firsts)]
        keys = {i: EmbeddingCache.key(waves[i]) for i in wanted} if folder else {}
        asked = set(keys.values())
        known = [[cache.load(asked) for cache in part] for part in caches]
        todo = [[i for i in wanted if any(keys[i] not in stored for stored in part)] if folder else wanted
                for part in known]
        missing = set().union(*map(set, todo))
        union = [i for i in wanted if i in missing]
        computing = [j for j, rows in enumerate(todo) if rows] or list(range(len(specs)))  # all: for the shapes
        if len(computing) < len(specs):
            model = _encoder_model("+".join(specs[j] for j in computing), noise_db)
        computed = self._encode_shared(model, waves, union, any(firsts[j] for j in computing))
        embedded = computed[0].split([LAYER_DIMS[layers[j]] for j in computing], dim=1)
        first_of = iter(computed[1].unbind(dim=1) if len(computed) > 1 else ())
        new = {j: [part, next(first_of)] if firsts[j] else [part] for j, part in zip(computing, embedded)}
        position = {i: n for n, i in enumerate(union)}
        parts = []
        for j, rows in enumerate(todo):
            rows_set = set(rows)
            done = [i for i in wanted if i not in rows_set]
            outs = []
            for k in range(1 + firsts[j]):
                fresh = None
                if j in new:
                    fresh = new[j][k] if rows == union else new[j][k][[position[i] for i in rows]]
                if rows == list(range(len(waves))):  # every clip computed now: no copy
                    out = fresh
                else:  # row by row from the cache: a stacked copy of the cached rows would be held twice
                    like = torch.from_numpy(known[j][k][keys[done[0]]])[None] if fresh is None else fresh
                    out = torch.zeros((len(waves), *like.shape[1:]), dtype=like.dtype)
                    if rows:
                        out[rows] = fresh
                    for i in done:
                        out[i] = torch.from_numpy(known[j][k][keys[i]])
                if folder:
                    known[j][k] = {}  # its rows are in `out` now
                if rows and folder and self._shard()[0] == 0:
                    caches[j][k].save(dict(zip((keys[i] for i in rows), fresh.numpy())))
                outs.append(out)
            parts.append(outs)
        embeddings = [part[0] for part in parts]
        encoded = [torch.cat(embeddings, dim=1) if len(embeddings) > 1 else embeddings[0]]
        if hp.midend_inputs:  # (clips, networks, 64, frames); one network's without a copy (1 GB for 40,000 clips)
            firsts = [part[1] for part in parts if len(part) > 1]
            encoded.append(torch.stack(firsts, dim=1) if len(firsts) > 1 else firsts[0].unsqueeze(1))
        return encoded

    def _encode_shared(self, model, waves: torch.Tensor, todo: list[int], first_midend: bool = False
                       ) -> list[torch.Tensor]:
        """[embeddings of `waves[todo]`] (and with `first_midend` their first mid-end layer outputs, (clips, networks,
        64, frames)), each DDP process computing every world-th clip, then all-gathered. Indexed batch by batch: a
        copy of the clips to encode would double the process's memory."""
        def encode(batch: torch.Tensor) -> list[torch.Tensor]:
            out = model.encode(batch, first_midend)
            return list(out) if first_midend else [out]

        rank, world = self._shard()
        empty = [part[:0] for part in encode(torch.zeros(1, CLIP_SAMPLES))]
        if not todo:  # every process sees the same clips, so all return here together
            return empty
        mine = todo[rank::world]
        parts = [[part] for part in empty]
        with torch.inference_mode():
            for start in tqdm(range(0, len(mine), 16), desc="encode", unit="batch", leave=False):
                for kept, part in zip(parts, encode(as_float(waves[mine[start:start + 16]]))):
                    kept.append(part)
        encoded = [torch.cat(kept) for kept in parts]
        if world == 1:
            return encoded
        out = []
        for mine_part in encoded:
            everyone = torch.zeros((len(todo), *mine_part.shape[1:]), dtype=mine_part.dtype)
            _all_gather_rows(mine_part, [torch.arange(r, len(todo), world) for r in range(world)], everyone)
            out.append(everyone)
        return out

    def train_dataloader(self) -> StatefulDataLoader:
        # Stateful: Lightning stores its position in checkpoints, so a run killed mid-epoch resumes
        # on the next batch of the same shuffled order.
        # Its own generator: worker seeds then never draw from the global RNG, whose state the
        # system restores on resume.
        return StatefulDataLoader(self.train_set, batch_size=self.hparams.batch_size, drop_last=True,
                                  sampler=EpochShuffle(len(self.train_set), self.hparams.seed, *self._shard()),
                                  num_workers=self.hparams.num_workers, generator=self._generator(1),
                                  collate_fn=collate)

    def val_dataloader(self) -> StatefulDataLoader:
        return StatefulDataLoader(self.val_set, batch_size=self.hparams.batch_size * 2,
                                  num_workers=self.hparams.num_workers, generator=self._generator(2),
                                  collate_fn=collate)

    def _shard(self) -> tuple[int, int]:
        """(rank, world size) of this process: (0, 1) unless a DDP trainer runs it."""
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def _generator(self, stream: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.hparams.seed * 1000 + stream)
