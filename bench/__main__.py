"""`python -m bench [inference features startup training accuracy]`: print the README's tables.

The default run takes a few minutes on 2 cores; `--repeat` trades time for steadier medians.
"""

from __future__ import annotations

import argparse
import importlib

from .common import machine

ALL = ("inference", "features", "startup", "training", "accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="*", choices=ALL, default=list(ALL))
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    for name in args.which:
        module = importlib.import_module(f"bench.{name}")
        print(module.run(args.repeat) if name in ("inference", "features") else module.run(), flush=True)


if __name__ == "__main__":
    main()
