"""Model resolution: local folder, Hub repo through a real Hub cache folder (offline), and fallback."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from irmas.hub import load_model, parse_spec
from irmas.model import InstrumentClassifier
from tests.conftest import ROOT

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(tmp_path, model_dir, repo_id="someone/irmas-tiny", refs=("main", "v1")):
    """The layout huggingface_hub itself writes: models--owner--name/{refs,snapshots/<commit>}."""
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, snapshot / name)
    (repo / "refs").mkdir()
    for ref in refs:
        (repo / "refs" / ref).write_text(COMMIT)
    return tmp_path / "hub"


def resolve_in_subprocess(spec, bundled, env):
    """load_model in a fresh interpreter, as the app/CLI would with these environment variables."""
    code = ("import json, sys, torch; from irmas.hub import load_model; m = load_model(sys.argv[1], sys.argv[2]);"
            "torch.manual_seed(0); x = torch.randn(1, 66150);"
            "print(json.dumps({'source': m.source, 'revision': m.revision, 'describe': m.describe(),"
            "'logits': m.model(x).tolist()}))")
    proc = subprocess.run([sys.executable, "-c", code, spec, str(bundled)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def other_model_dir(tmp_path):
    torch.manual_seed(123)
    model = InstrumentClassifier(tower_channels=[4, 8]).eval()
    model.save_pretrained(tmp_path / "other")
    return tmp_path / "other"


def test_parse_spec_splits_revision():
    assert parse_spec("owner/name@v1.2") == ("owner/name", "v1.2")
    assert parse_spec("owner/name") == ("owner/name", None)


@pytest.mark.parametrize("spec, revision", [("someone/irmas-tiny", None), ("someone/irmas-tiny@v1", "v1"),
                                             (f"someone/irmas-tiny@{COMMIT}", COMMIT)])
def test_hub_repo_loads_from_the_hub_cache_offline(tmp_path, tiny_model_dir, spec, revision):
    cache = hub_cache(tmp_path, other_model_dir(tmp_path))
    got = resolve_in_subprocess(spec, tiny_model_dir, {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert got["source"] == "hub" and got["revision"] == revision
    assert "Hub model someone/irmas-tiny@" in got["describe"]
    bundled = resolve_in_subprocess("", tiny_model_dir, {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert got["logits"] != bundled["logits"]  # the Hub weights were used, not the bundled ones


def test_missing_repo_falls_back_to_bundled_and_says_why(tmp_path, tiny_model_dir):
    cache = hub_cache(tmp_path, other_model_dir(tmp_path))
    got = resolve_in_subprocess("someone/not-there@v9", tiny_model_dir,
                                {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert got["source"] == "bundled"
    assert "requested model was not used" in got["describe"] and "someone/not-there@v9" in got["describe"]


def test_unknown_revision_falls_back(tmp_path, tiny_model_dir):
    cache = hub_cache(tmp_path, other_model_dir(tmp_path))
    got = resolve_in_subprocess("someone/irmas-tiny@nope", tiny_model_dir,
                                {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert got["source"] == "bundled"


def test_unreachable_hub_falls_back_within_the_deadline(tmp_path, tiny_model_dir):
    start = time.monotonic()
    got = resolve_in_subprocess("irmas-test/does-not-exist", tiny_model_dir,
                                {"HF_HUB_CACHE": str(tmp_path / "empty"), "IRMAS_HUB_DEADLINE": "3",
                                 "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert got["source"] == "bundled"
    assert time.monotonic() - start < 60


def test_local_folder_and_environment_variable(tmp_path, tiny_model_dir, monkeypatch):
    other = other_model_dir(tmp_path)
    loaded = load_model(str(other), bundled_dir=tiny_model_dir)
    assert loaded.source == "local" and loaded.fallback_reason is None
    monkeypatch.setenv("IRMAS_MODEL", str(other))
    assert load_model(None, bundled_dir=tiny_model_dir).source == "local"
    monkeypatch.delenv("IRMAS_MODEL")
    assert load_model(None, bundled_dir=tiny_model_dir).source == "bundled"


def test_not_a_repo_id_and_broken_folder_fall_back(tmp_path, tiny_model_dir):
    assert "neither a folder nor a Hub repo id" in load_model("just-a-name", tiny_model_dir).fallback_reason
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    assert load_model(str(tmp_path / "broken"), tiny_model_dir).source == "bundled"


@pytest.mark.parametrize("encoder, named", [
    (None, None),
    ("MSD_musicnn/pooled", "a network pretrained on real music (musicnn)"),
    ("MSD_musicnn/pooled+MTT_vgg/pool3", "networks pretrained on real music (musicnn and musicnn's VGG)"),
    ("MSD_musicnn/pooled+MTT_vgg/pool3+MTT_musicnn/pooled",
     "networks pretrained on real music (two musicnns and musicnn's VGG)"),
    ("MTT_vgg/pool2+harmonics", "three frequency bands, to a network pretrained on real music (musicnn's VGG), "
                                "and to the harmonics of the notes' pitch"),
])
def test_description_names_the_networks_of_the_encoder_branch(encoder, named):
    from irmas.hub import LoadedModel

    text = LoadedModel(InstrumentClassifier(tower_channels=[4, 8], encoder=encoder), "local", "x").describe()
    assert "listens to three frequency bands" in text
    assert (named in text) if named else ("pretrained" not in text)
