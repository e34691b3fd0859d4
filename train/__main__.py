"""`python -m train fit|validate --config train/configs/X.yaml`, `export CKPT OUT`, `calibrate OUT DIR...`,
`push OUT --repo-id R`, `loso PLAN.yaml --seed N` (leave-one-source-out)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import torch

    # subnormal floats turn up in training after some hundreds of steps; Intel CPUs compute on them up to 80x slower
    torch.set_flush_denormal(True)
    if argv and argv[0] in ("export", "push", "calibrate"):
        return _tools(argv)
    if argv and argv[0] == "loso":
        from .loso import main as loso

        return loso(argv[1:])
    from lightning.pytorch.cli import LightningCLI

    from .data import IrmasDataModule
    from .panns import PannsUnavailableError
    from .system import InstrumentSystem

    class CLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            # the data module computes the model's fixed encoder embeddings once: one key sets both
            parser.link_arguments("model.encoder", "data.encoder")
            parser.link_arguments("model.encoder_noise_db", "data.encoder_noise_db")
            # fine-tuning musicnn's mid-end needs each clip's first mid-end layer output in the batches
            parser.link_arguments("model.midend_lr", "data.midend_inputs", compute_fn=lambda rate: bool(rate))

    try:
        CLI(InstrumentSystem, IrmasDataModule, args=argv, save_config_kwargs={"overwrite": True})
    except PannsUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _tools(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m train")
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="Lightning checkpoint -> save_pretrained folder with a model card")
    e.add_argument("ckpt", type=Path)
    e.add_argument("out_dir", type=Path)
    e.add_argument("--config", type=Path, help="the training YAML, copied into the card")
    e.add_argument("--training-data", default=None, help="one paragraph for the card")
    e.add_argument("--trained-on", default=None, help="a short phrase the app shows: what the model learnt from")
    e.add_argument("--results", type=Path, default=None, help="a markdown file of figures on test data")
    p = sub.add_parser("push", help="upload an exported folder to the Hugging Face Hub")
    p.add_argument("folder", type=Path)
    p.add_argument("--repo-id", required=True)
    p.add_argument("--revision", default=None)
    p.add_argument("--private", action="store_true")
    c = sub.add_parser("calibrate", help="set the detection threshold that maximises micro F1 on test-layout folders")
    c.add_argument("model_dir", type=Path)
    c.add_argument("folders", nargs="+", type=Path)
    c.add_argument("--shift", type=float, default=0.0,
                   help="added to the best threshold there: leave-one-source-out's mean shift for unheard sources")
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        from .calibrate import calibrate

        threshold, f1 = calibrate(args.model_dir, args.folders, args.shift)
        print(f"threshold {threshold:.2f} (micro F1 {f1:.3f} on {', '.join(map(str, args.folders))}"
              f"{f' at the best threshold, shifted by {args.shift:+.2f}' if args.shift else ''}) "
              f"written to {args.model_dir / 'config.json'}")
        return 0
    from .export import export, push

    if args.command == "export":
        card = {"config": args.config.read_text() if args.config else ""}
        if args.training_data:
            card["training_data"] = args.training_data
        if args.trained_on:
            card["trained_on"] = args.trained_on
        if args.results:
            card["results"] = args.results.read_text()
        print(export(args.ckpt, args.out_dir, card))
    else:
        print(push(args.folder, args.repo_id, args.revision, args.private))
    return 0


if __name__ == "__main__":
    sys.exit(main())
