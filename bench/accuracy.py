"""`irmas evaluate` on rendered test excerpts: banks the bundled model trained on, and banks it never
heard (TimGM6mb and csound's sf_GMbank, where Debian's packages installed them, rendered here for evaluation only),
plus real IRMAS when it is on this machine."""

from __future__ import annotations

import shutil
from pathlib import Path

from irmas.data.render import RENDERER_VERSION, read_manifest, render_dataset
from irmas.data.sampler import SAMPLER_VERSION, is_sample_library
from irmas.evaluate import evaluate_folder
from irmas.hub import load_model

from .common import table

# Sources evaluated only: a bank the model never trained on, and real recorded notes (`irmas data samples`)
# played by the sampler, where they have been fetched (unheard unless the model's card says it trained on them).
HELD_OUT = {"TimGM6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2", "sf_GMbank": "/usr/share/sounds/sf2/sf_GMbank.sf2",
            "real recorded notes": "data/samples"}
HELD_OUT_SEED = 1234
PUBLISHED = [("Han et al. 2017 (IRMAS test)", "0.602", "0.503"),
             ("Reghunath & Rajan 2022 (IRMAS test)", "0.66", "0.62"),
             ("PaSST-based MusDetect (IRMAS test)", "0.688", "0.617")]


def run(data: Path = Path("data/bench"), excerpts: int = 200) -> str:
    loaded = load_model(None)
    model = loaded.model
    sets = [(f"{b} (trained on)", Path("data/synth") / b / "test")
            for b in ("FluidR3_GM", "MuseScore_General", "GeneralUser")]
    for name, path in HELD_OUT.items():
        heard = name in (loaded.trained_on or "")  # the real notes, once the bundled model trains on them
        if Path(path).is_file() or is_sample_library(path):
            bank_dir = data / Path(path).stem
            wanted = {"seed": HELD_OUT_SEED, "test_excerpts": excerpts, "renderer": RENDERER_VERSION,
                      **({"sampler": SAMPLER_VERSION} if is_sample_library(path) else {})}
            if any(read_manifest(bank_dir).get(k) != v for k, v in wanted.items()):
                shutil.rmtree(bank_dir, ignore_errors=True)  # rendered by other code: render again
                render_dataset([path], data, train_per_class=0, test_excerpts=excerpts, seed=HELD_OUT_SEED,
                               progress=False)
            sets.append((f"{name} ({'trained on, other pieces' if heard else 'held out'})", bank_dir / "test"))
    for part in sorted(Path("data/raw").glob("*Test*Part*")):
        sets.append((f"IRMAS {part.name}", part))
    rows = []
    for name, folder in sets:
        if not folder.is_dir():
            continue
        r = evaluate_folder(model, folder).to_dict()
        version = read_manifest(folder.parent).get("renderer")
        if folder.is_relative_to("data/synth") and version != RENDERER_VERSION:
            name += f" (rendered by other code: {version or 'unknown'})"
        rows.append([name, r["n_files"], *(f"{r[k]:.3f}" for k in (
            "micro_precision", "micro_recall", "micro_f1", "macro_precision", "macro_recall", "macro_f1")),
            " ".join(f"{c} {f:.2f}" for c, f in r["per_class"].items())])
    for name, micro, macro in PUBLISHED:
        rows.append([f"other system: {name}", "", "", "", micro, "", "", macro, ""])
    return table(f"Accuracy, IRMAS protocol (threshold {model.threshold}; renderer {RENDERER_VERSION})", [
        "data", "files", "micro P", "micro R", "micro F1", "macro P", "macro R", "macro F1", "per-class F1"], rows)
