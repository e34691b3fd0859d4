"""Print the README's tables: `python -m bench [BENCH ...]`, any of the names in ALL (default: all of them).

The default run takes a few minutes on 2 cores; `--repeat` trades time for steadier medians.
"""

from __future__ import annotations

import argparse
import importlib

from .common import machine

ALL = ("inference", "features", "startup", "load", "training", "accuracy", "robustness", "others", "live", "microphone")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="*", metavar="BENCH", help=f"any of {', '.join(ALL)} (default: all)")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    unknown = [w for w in args.which if w not in ALL]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(ALL)}")
    args.which = args.which or list(ALL)
    return args


def main() -> None:
    args = parse_args()
    print(f"Machine: {machine()}")
    for name in args.which:
        module = importlib.import_module(f"bench.{name}")
        print(module.run(args.repeat) if name in ("inference", "features") else module.run(), flush=True)


if __name__ == "__main__":
    main()
