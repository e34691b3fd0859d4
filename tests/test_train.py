"""Training: the two-phase schedule, resume, PANNs fetch, export and push (tiny runs on rendered data)."""

import http.server
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial

import pytest
import torch

pytest.importorskip("lightning")
import lightning as L  # noqa: E402

from irmas.labels import CODES  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from train.data import IrmasDataModule  # noqa: E402
from train.system import InstrumentSystem  # noqa: E402


def tiny_system(**kw):
    args = dict(tower_channels=[4, 8], fusion_dims=[32, 16], embed_dim=16, unfreeze_epoch=1, head_lr=1e-2,
                finetune_lr=1e-2)
    return InstrumentSystem(**{**args, **kw})


def datamodule(rendered):
    return IrmasDataModule(train_dirs=[str(rendered / "FluidR3_GM" / "train")],
                           val_dirs=[str(rendered / "MuseScore_General" / "train")], batch_size=8)


def trainer(tmp_path, epochs, **kw):
    return L.Trainer(max_epochs=epochs, accelerator="cpu", limit_train_batches=3, limit_val_batches=2,
                     logger=False, enable_progress_bar=False, enable_model_summary=False, deterministic=True,
                     default_root_dir=tmp_path, **kw)


class Snapshots(L.Callback):
    def __init__(self):
        self.towers, self.heads = [], []

    def on_train_epoch_end(self, trainer, system):
        self.towers.append({k: v.clone() for k, v in system.model.towers.state_dict().items()})
        self.heads.append({k: v.clone() for k, v in system.model.head.state_dict().items()})


def test_towers_hold_still_in_phase_one_and_train_in_phase_two(tmp_path, rendered):
    L.seed_everything(0)
    system = tiny_system()
    start = {k: v.clone() for k, v in system.model.towers.state_dict().items()}
    head_start = system.model.head.weight.clone()
    snaps = Snapshots()
    trainer(tmp_path, 2, callbacks=[snaps]).fit(system, datamodule(rendered))
    after_phase1, after_phase2 = snaps.towers
    assert all(torch.equal(start[k], after_phase1[k]) for k in start)  # weights and BN statistics
    assert not torch.equal(snaps.heads[0]["weight"], head_start)  # the head did learn
    changed = [k for k in start if not torch.equal(after_phase1[k], after_phase2[k])]
    assert any(k.endswith("conv1.weight") for k in changed) and any("running_mean" in k for k in changed)


def test_augmentation_mixes_up_to_max_mixed_clips_into_multi_label_targets():
    torch.manual_seed(0)
    system = tiny_system(mix_prob=1.0, max_mixed=3)
    waves = torch.randn(32, 66150)
    targets = torch.eye(11)[torch.arange(32) % 11]
    out, mixed = system.augment(waves, targets)
    assert out.shape == waves.shape and out.abs().max() <= 1.0 + 1e-5
    counts = mixed.sum(dim=1)
    assert counts.min() >= 1 and counts.max() <= 4 and (counts >= 3).any()
    assert torch.equal(tiny_system(mix_prob=0.0).augment(waves, targets)[1], targets)


def test_time_shift_rotates_each_clip_by_its_own_random_amount():
    torch.manual_seed(0)
    waves = torch.arange(8 * 1000, dtype=torch.float32).reshape(8, 1000)  # row i holds i*1000 .. i*1000+999
    shifted, targets = tiny_system().augment(waves, torch.eye(11)[:8])
    starts = shifted[:, 0].long() - torch.arange(8) * 1000
    for clip, start, original in zip(shifted, starts, waves):
        assert torch.equal(clip, torch.cat([original[start:], original[:start]]))  # wrapped round, not padded
    assert len(set(starts.tolist())) > 1 and torch.equal(targets, torch.eye(11)[:8])


def test_mixture_dirs_add_every_3s_clip_of_each_excerpt_with_all_its_labels(rendered):
    import soundfile as sf

    from irmas.data.layouts import read_testing

    plain = datamodule(rendered)
    plain.setup("fit")
    mixed = IrmasDataModule(train_dirs=plain.hparams.train_dirs, val_dirs=plain.hparams.val_dirs, batch_size=8,
                            mixture_dirs=[str(rendered / "FluidR3_GM" / "test")])
    mixed.setup("fit")
    excerpts = read_testing(rendered / "FluidR3_GM" / "test")
    clips = [int(sf.info(str(ex.path)).duration // 3) for ex in excerpts]
    x, y = mixed.train_set.tensors
    assert len(x) == len(plain.train_set) + sum(clips)
    assert torch.equal(x[:len(plain.train_set)], plain.train_set.tensors[0])
    extra = y[len(plain.train_set):]
    expected = torch.cat([torch.tensor([[float(c in ex.labels) for c in CODES]] * n) for ex, n in zip(excerpts, clips)])
    assert torch.equal(extra, expected) and (extra.sum(dim=1) > 1).any()
    assert (x[len(plain.train_set):].abs().amax(dim=1) > 0).all()  # every clip holds audio
    assert len(mixed.val_set) == len(plain.val_set)
    # each clip's source: its training folder, and none for the excerpts' clips
    assert mixed.train_sources.tolist() == [0] * len(plain.train_set) + [-1] * sum(clips)


def test_computing_embeddings_leaves_the_global_random_numbers_that_training_draws_next_as_they_were(rendered):
    """Training draws augmentation and dropout from the global generator after the data's setup: the models the data
    module builds to compute embeddings must not move it, or a change in how it computes them changes the weights."""
    plain = datamodule(rendered)
    encoded = IrmasDataModule(train_dirs=plain.hparams.train_dirs, val_dirs=plain.hparams.val_dirs, batch_size=8,
                              encoder="MSD_musicnn/pooled")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    encoded.setup("fit")
    assert encoded.train_set.tensors[2].abs().amax() > 0  # it did compute embeddings
    assert torch.equal(torch.get_rng_state(), before)


def test_random_eq_adds_one_smooth_bounded_curve_per_clip():
    torch.manual_seed(0)
    system = tiny_system(eq_db=12.0)
    bands = system.model.features(torch.randn(4, 66150))
    curves = [(eq - spec) * (20 / math.log(10)) for eq, spec in zip(system.random_eq(bands), bands)]
    for curve in curves:
        assert torch.allclose(curve, curve[:, :1, :], atol=1e-4)  # the same over time
        assert curve.abs().max() <= 12.0 + 1e-3 and curve.abs().amax(dim=(1, 2)).min() > 0
    # continuous across the band edges (1 kHz, 4 kHz): one curve, not three
    for low, high in ((0, 1), (1, 2)):
        assert (curves[low][:, 0, -1] - curves[high][:, 0, 0]).abs().max() < 1.5
    assert not torch.allclose(curves[0][0], curves[0][1])  # each clip its own


def test_gain_plays_each_clip_up_to_gain_db_quieter():
    torch.manual_seed(0)
    waves = torch.randn(256, 22050)
    targets = torch.zeros(256, len(CODES))
    out, same_targets = tiny_system(gain_db=12.0).augment(waves, targets)
    ratio_db = 20 * torch.log10(out.abs().amax(dim=1) / waves.abs().amax(dim=1))
    assert torch.equal(same_targets, targets)
    assert ratio_db.max() <= 1e-4 and ratio_db.min() >= -12.0 - 1e-4
    assert ratio_db.min() < -10 and ratio_db.max() > -2 and ratio_db.std() > 2  # spread over the range, per clip
    untouched, _ = tiny_system().augment(waves, targets)
    assert torch.allclose(untouched.abs().amax(dim=1), waves.abs().amax(dim=1))


def test_random_lowpass_darkens_only_above_its_corner_and_only_some_clips():
    torch.manual_seed(0)
    system = tiny_system(lowpass_prob=0.5, lowpass_slope=12.0)
    bands = system.model.features(torch.randn(64, 22050))
    curves = [(lp - spec) * (20 / math.log(10)) for lp, spec in zip(system.random_lowpass(bands), bands)]
    low, mid, high = (curve[:, 0, :] for curve in curves)  # the same for every frame
    darkened = high[:, -1] < 0
    assert 10 < int(darkened.sum()) < 54  # about half the clips
    assert torch.all(torch.cat([low, mid, high], dim=1)[~darkened] == 0)
    assert torch.all(low[:, :12] == 0)  # nothing below the lowest corner (500 Hz)
    whole = torch.cat([low, mid, high], dim=1)
    assert torch.all(whole[:, 1:] <= whole[:, :-1] + 1e-4)  # only ever darker towards the treble
    hz = torch.cat([system.model.features.frequencies(i) for i in range(3)])
    octaves_above_500 = torch.log2(hz[-1] / 500)
    assert whole.min() >= -12.0 * octaves_above_500 - 1e-3


def test_freq_mix_style_moves_some_clips_spectral_colour_towards_another_clips():
    """Clips of one tone each in all three bands at levels of their own: a mixed clip's per-bin mean over
    time lands between the clips' means, its frames keep their order, the other clips stay as they were,
    and a clip is mixed in all three bands or in none."""
    torch.manual_seed(0)
    t = torch.arange(22050) / 22050
    tones = torch.stack([torch.sin(2 * math.pi * hz * t) for hz in (220, 2000, 6000)])
    swell = 1 + 0.5 * torch.sin(2 * math.pi * 3 * t)
    levels = 10 ** (-2 * torch.rand(64, 3))  # each clip its own colour: 0 to -40 dB per tone
    waves = (levels @ tones) * swell
    system = tiny_system(freq_mixstyle=0.5)
    bands = system.model.features(waves)
    mixed = system.freq_mix_style(bands)
    changed = [(after - before).abs().amax(dim=(1, 2)) > 2e-5 for before, after in zip(bands, mixed)]
    assert torch.equal(changed[0], changed[1]) and torch.equal(changed[0], changed[2])  # all bands or none
    assert 15 < int(changed[0].sum()) < 49  # about half the clips
    for before, after in zip(bands, mixed):
        assert torch.allclose(before[~changed[0]], after[~changed[0]], atol=2e-5)
        own, new = before.mean(dim=1), after.mean(dim=1)
        assert (new >= own.amin(dim=0) - 1e-3).all() and (new <= own.amax(dim=0) + 1e-3).all()
        # within a clip, every bin keeps its frames' order (the clip's own time course survives)
        d_before, d_after = before - before.mean(dim=1, keepdim=True), after - after.mean(dim=1, keepdim=True)
        assert (torch.sign(d_before) == torch.sign(d_after)).float().mean() > 0.99


def test_label_smoothing_pulls_the_training_targets_towards_one_half():
    """A head that says 0.9 for every class: its loss is the cross-entropy against 0.95 / 0.05 at 0.1."""
    waves, targets = torch.randn(4, 66150), torch.eye(11)[:4]

    def loss(eps):
        system = tiny_system(label_smoothing=eps)
        with torch.no_grad():
            system.model.head.weight.zero_()
            system.model.head.bias.fill_(math.log(0.9 / 0.1))
        return float(system.training_loss((waves, targets)))

    def expected(eps):
        present, absent = 1 - eps / 2, eps / 2
        bce = lambda t: -(t * math.log(0.9) + (1 - t) * math.log(0.1))  # noqa: E731
        return (4 * bce(present) + 40 * bce(absent)) / 44

    for eps in (0.0, 0.1):
        assert loss(eps) == pytest.approx(expected(eps), rel=1e-5)
    assert expected(0.1) != pytest.approx(expected(0.0), rel=1e-2)


def _fit_script(tmp_path, rendered, epochs, devices, ckpt_path=None, pause=False) -> str:
    """A training run in its own process group, so it can be killed like a real one (with DDP, Lightning
    relaunches the script file for rank 1). It checkpoints every 2 steps and, with `pause`, waits after
    step 5 (mid-epoch 2) to give the test time to kill it."""
    script = tmp_path / f"fit_{'resume' if ckpt_path else 'start'}.py"
    script.write_text(f"""
import lightning as L, torch, sys, time
sys.path.insert(0, {str(ROOT)!r})
from tests.test_train import tiny_system, datamodule, trainer
from pathlib import Path
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

class PauseForKill(Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 5 and {pause!r}:  # step 4 is saved by now
            time.sleep(30)

L.seed_everything(0)
system = tiny_system(mix_prob=0.5, pitch_shift=0.06, spec_masks=2)  # its random draws must resume too
ckpt = ModelCheckpoint(dirpath={str(tmp_path / "ckpt")!r}, save_last=True, every_n_train_steps=2, save_top_k=-1)
ddp = dict(devices=2, strategy="ddp") if {devices} > 1 else {{}}
t = trainer(Path({str(tmp_path)!r}), {epochs}, callbacks=[ckpt, PauseForKill()], **ddp)
t.fit(system, datamodule(Path({str(rendered)!r})), ckpt_path={ckpt_path!r})
if t.global_rank == 0:
    torch.save(system.model.state_dict(), {str(tmp_path / "final.pt")!r})
""")
    return str(script)


@pytest.mark.parametrize("devices", [1, 2], ids=["one-process", "ddp-2-processes"])
def test_run_killed_mid_epoch_resumes_from_last_with_the_same_final_weights(tmp_path, rendered, devices):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    straight = tmp_path / "straight"
    straight.mkdir()
    subprocess.run([sys.executable, _fit_script(straight, rendered, 3, devices)], check=True, env=env, timeout=600)

    killed = tmp_path / "killed"
    killed.mkdir()
    proc = subprocess.Popen([sys.executable, _fit_script(killed, rendered, 3, devices, pause=True)], env=env,
                            start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "ckpt" / "epoch=1-step=4.ckpt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the run is paused after step 5, mid-epoch
    os.killpg(proc.pid, signal.SIGKILL)  # every process of the run, no clean shutdown, mid second epoch
    proc.wait()
    assert not (killed / "final.pt").exists()
    subprocess.run([sys.executable, _fit_script(killed, rendered, 3, devices, ckpt_path="last")], check=True,
                   env=env, timeout=600)
    a, b = torch.load(straight / "final.pt"), torch.load(killed / "final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_with_two_processes_on_cpu(tmp_path, rendered):
    """Two processes train; where the shared memory has no room (here: none at all) each keeps its own clips."""
    script = f"""
import lightning as L, sys
sys.path.insert(0, {str(ROOT)!r})
import train.data
from tests.test_train import tiny_system, datamodule
from pathlib import Path
train.data.SHARED_MEMORY = Path({str(tmp_path / "no-shm")!r})
L.seed_everything(0)
t = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", limit_train_batches=2,
              limit_val_batches=1, logger=False, enable_progress_bar=False, default_root_dir={str(tmp_path)!r})
system = tiny_system()
data = datamodule(Path({str(rendered)!r}))
t.fit(system, data)
if t.global_rank == 0 and data.train_set.tensors[0].untyped_storage().filename is None:
    print("DDP-OK", t.world_size, t.current_epoch)
"""
    (tmp_path / "ddp_fit.py").write_text(script)  # DDP relaunches this file for rank 1
    proc = subprocess.run([sys.executable, str(tmp_path / "ddp_fit.py")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "DDP-OK 2 2" in proc.stdout, proc.stderr[-3000:]
    assert "has no room for" in proc.stderr


def test_ddp_processes_share_the_decoding_and_the_encoding_of_embeddings_and_first_mid_end_outputs(tmp_path, rendered):
    """Each process decodes every other file and encodes every other clip (both networks from one log-mel), then
    all-gathers them, a few clips at a time (GATHER_ROWS): both processes must end up with every clip in the order
    one process loads them (excerpts cut into several clips, an unreadable file skipped), mixed, noised and
    quantised as one process does it, held once in shared memory that both map, and with each clip's own embedding
    and first mid-end layer output."""
    excerpts = tmp_path / "excerpts"
    shutil.copytree(rendered / "FluidR3_GM" / "test", excerpts)
    (excerpts / "broken.wav").write_bytes(b"RIFF not audio")
    (excerpts / "broken.txt").write_text("pia\n")
    encoder = "MSD_musicnn/pooled+MTT_vgg/pool3"
    script = f"""
import lightning as L, sys, torch
sys.path.insert(0, {str(ROOT)!r})
import train.data
train.data.GATHER_ROWS = 3  # several gathers, the last one partial
from tests.test_train import tiny_system
from train.data import IrmasDataModule, as_float, load_clips
from irmas.data.layouts import read_testing, read_training
from irmas.model import InstrumentClassifier
from pathlib import Path
L.seed_everything(0)
t = L.Trainer(max_epochs=1, accelerator="cpu", devices=2, strategy="ddp", limit_train_batches=2,
              limit_val_batches=1, logger=False, enable_progress_bar=False, default_root_dir={str(tmp_path)!r})
system = tiny_system(encoder={encoder!r}, midend_lr=1e-3, unfreeze_epoch=0)
train_dir = {str(rendered / "FluidR3_GM" / "train")!r}
stored = dict(train_dirs=[train_dir], mixture_dirs=[{str(excerpts)!r}], source_mixtures=6, noise_share=0.5,
              quantize_share=0.5, val_dirs=[{str(rendered / "MuseScore_General" / "train")!r}], batch_size=4)
data = IrmasDataModule(**stored, encoder={encoder!r}, midend_inputs=True)
t.fit(system, data)
waves, targets, encoded, first = data.train_set.tensors
solo, mixtures = read_training(Path(train_dir)), read_testing(Path({str(excerpts)!r}))
alone, alone_targets, skipped = load_clips(solo + mixtures, whole=[False] * len(solo) + [True] * len(mixtures))
one_process = IrmasDataModule(**stored)  # no trainer: one process loads, mixes, adds noise and quantises alone
one_process.setup("fit")
loaded = all(torch.equal(a, b) for a, b in zip(data.train_set.tensors[:2], one_process.train_set.tensors))
loaded = loaded and len(waves) == len(alone) + 6 and skipped == 1 and torch.equal(targets[:-6], alone_targets)
loaded = loaded and bool((targets[-6:].sum(1) >= 2).all()) and not torch.equal(waves[:-6], alone)  # noise, quantised
loaded = loaded and len(waves) > len(solo) + len(mixtures) + 6  # excerpts gave several clips
model = InstrumentClassifier(tower_channels=[1], encoder={encoder!r})
with torch.inference_mode():
    expected, expected_first = model.encode(as_float(waves), first_midend=True)
same = torch.allclose(encoded, expected, atol=1e-4) and torch.allclose(first.float(), expected_first.float(), atol=1e-2)
# one copy of the training and validation clips in shared memory, its file gone once both processes mapped it
mapped = [data.train_set.tensors[0].untyped_storage().filename, data.val_set.tensors[0].untyped_storage().filename]
loaded = loaded and all(str(m).startswith("/dev/shm/irmas-clips-") and not Path(m).exists() for m in mapped)
loaded = loaded and mapped[0] != mapped[1] and one_process.train_set.tensors[0].untyped_storage().filename is None
result = f"GATHERED {{t.global_rank}} {{loaded}} {{len(waves) > 2 * 3 * 2}} {{same}}"
Path({str(tmp_path)!r}, f"rank{{t.global_rank}}.txt").write_text(result)  # one file each: both ranks share stdout
"""
    (tmp_path / "ddp_encode.py").write_text(script)  # DDP relaunches this file for rank 1
    proc = subprocess.run([sys.executable, str(tmp_path / "ddp_encode.py")], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "rank0.txt").read_text() == "GATHERED 0 True True True"
    assert (tmp_path / "rank1.txt").read_text() == "GATHERED 1 True True True"


# ---------------------------------------------------------------- PANNs checkpoint fetch

def test_panns_checkpoint_is_fetched_from_a_server_checked_by_size_and_loaded(tmp_path):
    from tests.test_model import panns_checkpoint
    from train.panns import PannsUnavailableError, fetch_panns

    served = tmp_path / "served"
    served.mkdir()
    panns_checkpoint(served / "Cnn14.pth", [4, 8, 16, 32, 64, 128])
    size = (served / "Cnn14.pth").stat().st_size
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(
        http.server.SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/Cnn14.pth"
    try:
        path = fetch_panns(None, cache_dir=tmp_path / "cache", url=url, expected_bytes=size)
        assert path.parent == tmp_path / "cache" and path.stat().st_size == size
        with pytest.raises(PannsUnavailableError, match="expected 123"):
            fetch_panns(None, cache_dir=tmp_path / "cache2", url=url, expected_bytes=123)
        assert not any((tmp_path / "cache2").glob("*.pth"))  # the wrong file was deleted
    finally:
        server.shutdown()
    system = tiny_system(tower_channels=[4, 8, 16, 32, 64, 128], panns_checkpoint=str(path))
    ref = torch.load(path, weights_only=True)["model"]["conv_block2.conv1.weight"]
    assert torch.equal(system.model.towers[2].blocks[1].conv1.weight, ref)


def test_training_without_the_checkpoint_says_how_to_get_it_and_writes_nothing(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"""trainer: {{default_root_dir: {tmp_path / 'run'}, max_epochs: 1}}
model: {{panns_checkpoint: {tmp_path / 'missing.pth'}}}
data: {{train_dirs: [{tmp_path}]}}
""")
    proc = subprocess.run([sys.executable, "-m", "train", "fit", "--config", str(config)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert proc.returncode != 0
    assert "Zenodo record 3987831" in proc.stderr and "panns_checkpoint" in proc.stderr
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- export and push

@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory, rendered):
    tmp = tmp_path_factory.mktemp("run")
    L.seed_everything(0)
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp, monitor="val/macro_f1", mode="max", filename="best")
    trainer(tmp, 1, callbacks=[ckpt]).fit(tiny_system(unfreeze_epoch=0, time_pool=2), datamodule(rendered))
    return tmp / "best.ckpt"


def test_export_writes_a_loadable_model_with_a_card(tmp_path, trained_ckpt):
    from irmas.model import InstrumentClassifier
    from train.export import export, load_system

    card = {"training_data": "tiny render", "config": "seed_everything: 0", "trained_on": "a tiny render: two banks",
            "results": "| TimGM6mb | 0.5 |"}
    out = export(trained_ckpt, tmp_path / "out", card)
    model = InstrumentClassifier.from_pretrained(str(out), strict=True).eval()
    system = load_system(trained_ckpt)
    x = torch.randn(2, 66150)
    assert torch.equal(model(x), system.model(x))
    card = (out / "README.md").read_text()
    assert "tiny render" in card and "CC BY-NC-SA" in card and "| TimGM6mb | 0.5 |" in card
    assert "## Limitations" in card and "sources it never heard" in card
    from irmas.hub import trained_on
    assert trained_on(out / "README.md") == "a tiny render: two banks"  # what the app's model line says
    for metric in ("val/accuracy", "val/macro_f1", "val/multilabel_micro_f1", "val/loss"):  # every score, not one
        assert f"| {metric} | 0." in card
    assert "| `gel` | electric guitar |" in card
    assert "on 23 ms frames" in card  # the towers' time_pool of 2 came through the checkpoint (outputs above too)


def test_push_uploads_the_folder_to_the_named_repo(tmp_path, trained_ckpt, monkeypatch):
    from huggingface_hub import HfApi

    from train.export import export, push

    out = export(trained_ckpt, tmp_path / "out")
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(HfApi, "create_branch", lambda self, repo_id, **kw: calls.append(("branch", repo_id, kw)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)) or "commit-url")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert push(out, "me/irmas-test", revision="v1", private=True) == "commit-url"
    assert calls[0] == ("create", "me/irmas-test", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert calls[1][0] == "branch" and calls[1][2]["branch"] == "v1"
    upload = calls[2][1]
    assert upload["repo_id"] == "me/irmas-test" and upload["revision"] == "v1"
    assert sorted(os.listdir(upload["folder_path"])) == ["README.md", "config.json", "model.safetensors"]
    with pytest.raises(ValueError, match="not an exported irmas model"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text(json.dumps({"a": 1}))
        push(tmp_path / "empty", "me/x")


def test_calibrate_writes_the_best_threshold_into_config_and_card(tmp_path, trained_ckpt, rendered):
    from irmas.evaluate import evaluate_folder
    from irmas.model import InstrumentClassifier
    from train.calibrate import calibrate
    from train.export import export

    out = export(trained_ckpt, tmp_path / "out")
    folders = [rendered / "FluidR3_GM" / "test", rendered / "MuseScore_General" / "test"]
    threshold, f1 = calibrate(out, folders)
    config = json.loads((out / "config.json").read_text())
    assert config["threshold"] == threshold and 0.05 <= threshold < 0.95
    card = (out / "README.md").read_text()
    assert f"Detection threshold: {threshold} (micro F1 {f1:.3f} on " in card
    calibrate(out, folders)  # calibrating again replaces the sentence, as on a card already calibrated
    assert (out / "README.md").read_text() == card
    model = InstrumentClassifier.from_pretrained(str(out), strict=True).eval()
    scores = [evaluate_folder(model, f).metrics for f in folders]
    assert model.threshold == threshold
    worse = [evaluate_folder(model, f, threshold=0.97).metrics["micro_f1"] for f in folders]
    assert 0.0 <= f1 <= 1.0 and sum(s["micro_f1"] for s in scores) >= sum(worse)
    shifted, same_f1 = calibrate(out, folders, shift=-0.04)  # leave-one-source-out's shift for unheard sound
    assert shifted == round(threshold - 0.04, 2) and same_f1 == f1
    assert json.loads((out / "config.json").read_text())["threshold"] == shifted
    assert f"Detection threshold: {shifted} (micro F1 {f1:.3f} on " in (out / "README.md").read_text()
    assert f"at {threshold}, moved by -0.04 for sources never heard" in (out / "README.md").read_text()


# ---------------------------------------------------------------- leave-one-source-out
def test_leave_one_source_out_trains_without_each_source_and_scores_on_it(tmp_path, rendered):
    import yaml

    from train.loso import main as loso

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "seed_everything": 0,
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "limit_train_batches": 2,
                    "limit_val_batches": 1, "enable_progress_bar": False,
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "x"}},
                    # as the recipes do: the best epoch on validation (here the held-out source) would be kept
                    "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                   "init_args": {"monitor": "val/loss", "mode": "max", "save_last": True}}]},
        "model": {"tower_channels": [4, 8], "fusion_dims": [16], "fusion_dropout": [0.0], "embed_dim": 8},
        "data": {"train_dirs": ["unused"], "batch_size": 4}}))
    sources = {bank: {"train": str(rendered / bank / "train"), "test": str(rendered / bank / "test")}
               for bank in ("FluidR3_GM", "MuseScore_General")}
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"recipe": str(recipe), "out": str(tmp_path / "loso"), "sources": sources}))
    assert loso([str(plan), "--seed", "3", "--", "--model.time_pool", "2"]) == 0
    for held, kept in (("FluidR3_GM", "MuseScore_General"), ("MuseScore_General", "FluidR3_GM")):
        fold = tmp_path / "loso" / f"{held}-seed3"
        result = json.loads((fold / "result.json").read_text())
        assert result["held_out"] == held and 0 <= result["solo_accuracy"] <= 1
        assert 0.05 <= result["held_out_threshold"] < 0.95 and 0 <= result["held_out_best_micro_f1"] <= 1
        config = yaml.safe_load(next(fold.glob("lightning_logs/version_*/config.yaml")).read_text())
        assert config["data"]["train_dirs"] == [sources[kept]["train"]]
        assert config["data"]["val_dirs"] == [sources[held]["train"]] and config["seed_everything"] == 3
        assert config["model"]["time_pool"] == 2  # the override after --
        card = (fold / "model" / "README.md").read_text()
        assert "## Validation (epoch 1)" in card  # the last epoch, whatever validation preferred


def test_tilt_clips_brightens_or_darkens_a_share_of_clips_by_their_content():
    from train.data import PCM_SCALE, tilt_clips

    torch.manual_seed(0)
    noise = torch.round(torch.randn(200, 66150).clamp(-4, 4) / 4 * PCM_SCALE).to(torch.int16)
    stored = noise.clone()
    tilted = tilt_clips(stored, share=0.5, max_slope=3.0, seed=0)
    assert tilted is stored  # in place: a copy of every training clip would double training's memory
    changed = (tilted != noise).any(dim=1)
    assert 70 < int(changed.sum()) < 130  # about half
    assert tilted.dtype == torch.int16 and (tilted.abs().amax(dim=1)[changed] == PCM_SCALE).all()
    spectrum = torch.fft.rfft(tilted.double()).abs() ** 2
    before = torch.fft.rfft(noise.double()).abs() ** 2
    hz = torch.fft.rfftfreq(66150, 1 / 22050)
    low, high = (hz > 250) & (hz < 500), (hz > 4000) & (hz < 8000)  # 4 octaves apart (centres)

    def brightness(s):
        return 10 * torch.log10(s[:, high].mean(dim=1) / s[:, low].mean(dim=1))

    slope = (brightness(spectrum) - brightness(before)) / 4  # dB per octave
    assert slope[changed].abs().max() <= 3.0 + 0.2
    assert (slope[changed] > 1).any() and (slope[changed] < -1).any()  # both ways
    assert torch.equal(tilted[~changed], noise[~changed])
    # a clip's fate follows from its samples and the seed: in another position, in another set, the same
    again = tilt_clips(torch.cat([noise[100:], noise[:100]]), share=0.5, max_slope=3.0, seed=0)
    assert torch.equal(again, torch.cat([tilted[100:], tilted[:100]]))
    assert not torch.equal(tilt_clips(noise.clone(), share=0.5, max_slope=3.0, seed=1), tilted)


def test_noise_clips_adds_coloured_noise_to_a_share_at_the_asked_signal_to_noise_ratio():
    from train.data import PCM_SCALE, noise_clips

    t = torch.arange(66150) / 22050
    tones = torch.stack([torch.sin(2 * torch.pi * (200 + 3 * i) * t) for i in range(200)])  # distinct clips
    clean = torch.round(tones * 0.5 * PCM_SCALE).to(torch.int16)
    stored = clean.clone()
    noisy = noise_clips(stored, share=0.5, snr_db=(10.0, 30.0), seed=0)
    assert noisy is stored  # in place
    changed = (noisy != clean).any(dim=1)
    assert 70 < int(changed.sum()) < 130  # about half
    assert torch.equal(noisy[~changed], clean[~changed])
    assert noisy.dtype == torch.int16 and (noisy[changed].abs().amax(dim=1) == PCM_SCALE).all()  # peak-normalised
    a, b = clean[changed].double(), noisy[changed].double()
    gain = (a * b).sum(1, keepdim=True) / (a * a).sum(1, keepdim=True)  # the tone's share of each noisy clip
    residual = b - gain * a
    snr = 10 * torch.log10((gain * a).pow(2).mean(1) / residual.pow(2).mean(1))
    assert snr.min() > 9.5 and snr.max() < 30.5 and snr.max() - snr.min() > 10  # drawn across the range
    spectrum = torch.fft.rfft(residual).abs() ** 2
    hz = torch.fft.rfftfreq(66150, 1 / 22050)
    low, high = (hz > 250) & (hz < 500), (hz > 4000) & (hz < 8000)
    tilt = 10 * torch.log10(spectrum[:, high].mean(1) / spectrum[:, low].mean(1))
    assert tilt.max() > -3 and tilt.min() < -18  # white (0 dB over these 4 octaves) to brown-ish (-24 dB)
    again = noise_clips(torch.cat([clean[100:], clean[:100]]), share=0.5, snr_db=(10.0, 30.0), seed=0)
    assert torch.equal(again, torch.cat([noisy[100:], noisy[:100]]))  # a clip's fate follows from its samples


def test_quantize_clips_stores_a_share_as_8_bit_or_quiet_16_bit_files_hold_them():
    from train.data import PCM_SCALE, quantize_clips

    torch.manual_seed(0)
    music = torch.round(torch.randn(400, 22050).clamp(-4, 4) / 4 * PCM_SCALE).to(torch.int16)
    stored = quantize_clips(music.clone(), share=0.25, seed=0)
    changed = (stored != music).any(dim=1)
    assert 60 < int(changed.sum()) < 140  # about a quarter
    assert torch.equal(stored[~changed], music[~changed])
    values = [len(torch.unique(clip)) for clip in stored[changed]]
    assert max(values) <= 2 * 32768 * 10 ** (-30 / 20) + 1  # 16-bit at -30 dBFS or quieter, or 8-bit
    assert min(values) < 100 and sum(v <= 257 for v in values) > len(values) / 3
    assert (stored[changed].abs().amax(dim=1) == PCM_SCALE).all()  # peak-normalised again, as prediction does
    again = quantize_clips(torch.cat([music[200:], music[:200]]), share=0.25, seed=0)
    assert torch.equal(again, torch.cat([stored[200:], stored[:200]]))  # a clip's fate follows from its samples


def test_source_mixtures_sum_clips_of_different_classes_from_different_sources():
    from train.data import PCM_SCALE, source_mixtures

    t = torch.arange(22050) / 22050
    n_sources, n_classes = 3, 4  # clip i: class i % 4, source (i // 4) % 3, a tone of its own frequency
    clips = torch.stack([torch.sin(2 * torch.pi * (100 + 10 * i) * t) * (0.1 + 0.01 * i) for i in range(24)])
    waves = torch.round(clips * PCM_SCALE).to(torch.int16)
    targets = torch.zeros(24, 11)
    targets[torch.arange(24), torch.arange(24) % n_classes] = 1
    sources = (torch.arange(24) // n_classes) % n_sources
    sources[-1] = -1  # not to be drawn from
    x, y = source_mixtures(waves, targets, sources, n=200, seed=0)
    assert x.shape == (200, 22050) and x.dtype == torch.int16 and (x.abs().amax(1) == PCM_SCALE).all()
    counts = y.sum(1)
    assert set(counts.tolist()) == {2.0, 3.0} and (counts == 3).float().mean() > 0.2
    spectrum = torch.fft.rfft(x.double()).abs()  # 1 Hz bins: clip i is the peak at 100 + 10 i Hz
    for mix, labels in zip(spectrum[:20], y[:20]):
        parts = [i for i in range(24) if mix[100 + 10 * i] > 0.05 * mix.max()]
        assert 23 not in parts and len(parts) == int(labels.sum())
        assert len({int(sources[i]) for i in parts}) == len(parts)  # each from another source
        assert sorted(i % n_classes for i in parts) == sorted(torch.nonzero(labels).flatten().tolist())
        levels = torch.tensor([float(mix[100 + 10 * i]) for i in parts])
        assert levels.max() / levels.min() < 10 ** (6.5 / 20)  # equal loudness within +-3 dB, whatever the clip's
    again_x, again_y = torch.ones(200, 22050, dtype=torch.int16), torch.ones(200, 11)  # rows to write them into
    source_mixtures(waves, targets, sources, n=200, seed=0, out=(again_x, again_y))
    assert torch.equal(again_x, x) and torch.equal(again_y, y)
    assert not torch.equal(source_mixtures(waves, targets, sources, n=200, seed=1)[0], x)


def test_a_sources_extra_training_folders_are_left_out_with_it(tmp_path):
    from train.loso import fold_command

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data: {}\n")
    plan = {"recipe": str(recipe), "sources": {
        "A": {"train": "a/train", "extra_train": ["a-notes/train"], "test": "a/test"},
        "B": {"train": "b/train", "extra_train": ["b-notes/train"], "test": "b/test"},
        "C": {"train": "c/train", "test": "c/test"}}}
    def train_dirs(held):
        command = fold_command(plan, held, 0, tmp_path / held, [])
        return json.loads(command[command.index("--data.train_dirs") + 1])

    assert train_dirs("A") == ["b/train", "b-notes/train", "c/train"]
    assert train_dirs("C") == ["a/train", "a-notes/train", "b/train", "b-notes/train"]


def test_a_sources_negatives_are_left_out_with_it(tmp_path):
    from train.loso import fold_command

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data: {negative_dirs: [noise, c-others]}\n")
    plan = {"recipe": str(recipe), "sources": {
        "A": {"train": "a/train", "test": "a/test"},
        "C": {"train": "c/train", "extra_negatives": ["c-others"], "test": "c/test"}}}
    def negative_dirs(held):
        command = fold_command(plan, held, 0, tmp_path / held, [])
        return json.loads(command[command.index("--data.negative_dirs") + 1])

    assert negative_dirs("A") == ["noise", "c-others"]
    assert negative_dirs("C") == ["noise"]


def test_probe_heads_trains_each_folds_head_on_the_other_sources_embeddings(tmp_path, rendered):
    """tools/probe_heads.py: the fold's clips and embeddings as `train loso` builds them, a head that learns
    from them, held-out accuracy printed per fold."""
    import yaml

    sys.path.insert(0, str(ROOT / "tools"))
    import probe_heads

    recipe = {"trainer": {"max_epochs": 40, "devices": 1},
              "model": {"encoder": "MSD_musicnn/pooled", "fusion_dims": [32], "fusion_dropout": [0.0],
                        "head_lr": 1e-2, "finetune_lr": 1e-2, "unfreeze_epoch": 0, "label_smoothing": 0.1},
              "data": {"train_dirs": ["unused"], "batch_size": 8, "source_mixtures": 20}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    banks = ("FluidR3_GM", "MuseScore_General")
    plan = {"recipe": str(tmp_path / "recipe.yaml"), "sources": {
        bank: {"train": str(rendered / bank / "train"), "test": str(rendered / bank / "test")} for bank in banks}}
    data = {**recipe["data"], "encoder": "MSD_musicnn/pooled"}
    fold = probe_heads.cached_embeddings(tmp_path / "f.pt", {**data, **probe_heads.fold_data(plan, "FluidR3_GM")}, 0)
    assert fold["train_dirs"] == [str(rendered / "MuseScore_General" / "train")]
    n_solo = len(list((rendered / "MuseScore_General" / "train").rglob("*.wav")))
    assert fold["sources"].tolist() == [0] * n_solo + [-1] * 20  # the source mixtures belong to no one source
    assert fold["encoded"].shape == (n_solo + 20, 1506)
    assert len(fold["val_targets"]) == len(list((rendered / "FluidR3_GM" / "train").rglob("*.wav")))
    again = probe_heads.cached_embeddings(tmp_path / "f.pt", {}, 0)  # read back, not built again
    assert torch.equal(again["encoded"], fold["encoded"])
    head = probe_heads.train_head(fold, recipe, 0, [])
    solo = fold["targets"].sum(dim=1) == 1
    assert probe_heads.accuracy(head, fold["encoded"][solo], fold["targets"][solo]) > 0.5  # 11 classes: chance 0.09

    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "probe_heads.py"), str(tmp_path / "plan.yaml"),
                           "--head-seeds", "1", "--epochs", "2", "--out", str(tmp_path / "folds")],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    cells = [c.split(" / ") for c in proc.stdout.strip().splitlines()[-1].strip("| ").split(" | ")]
    # two folds and their mean: solo accuracy / excerpts micro F1
    assert len(cells) == 3 and all(len(c) == 2 and 0 <= float(v) <= 1 for c in cells for v in c)
    assert {p.name for p in (tmp_path / "folds").iterdir()} == {
        "FluidR3_GM-seed0.pt", "MuseScore_General-seed0.pt", "excerpts-FluidR3_GM.pt", "excerpts-MuseScore_General.pt"}
    excerpts = torch.load(tmp_path / "folds" / "excerpts-FluidR3_GM.pt", weights_only=True)
    assert len(excerpts["counts"]) == len(excerpts["targets"]) == 4 and excerpts["targets"].sum() >= 4
    assert len(excerpts["encoded"]) == excerpts["counts"].sum()  # every window of every excerpt
    from irmas.data.layouts import read_testing
    from irmas.predict import predict_file

    first = read_testing(rendered / "FluidR3_GM" / "test")[0].path
    assert len(predict_file(head, first).timeline) == excerpts["counts"][0]  # the windows the app would cut
    probs = probe_heads.excerpt_probabilities(head, excerpts)
    assert probs.shape == (4, 11) and ((probs > 0) & (probs < 1)).all()


def test_probe_heads_tunes_musicnns_upper_midend_from_its_first_layers_outputs(tmp_path, rendered):
    """tools/probe_heads.py --tune-midend: the mid-end's part of the embedding, computed again from the kept first
    mid-end layer outputs, is the cached embedding's; training moves the two upper layers alone; the CLI keeps the
    outputs beside the fold's embeddings."""
    import yaml

    sys.path.insert(0, str(ROOT / "tools"))
    import probe_heads

    from irmas.model import InstrumentClassifier

    behind_vgg = InstrumentClassifier(tower_channels=[1], encoder="MTT_vgg/pool1+MSD_musicnn/pooled")
    _, part = behind_vgg.encoder.tunable_midends()[0]
    assert (part.start, part.stop) == (6144 + 1122, 6144 + 1506)  # after the VGG's pool1 (48 x 128 numbers)
    recipe = {"trainer": {"max_epochs": 10, "devices": 1},
              "model": {"encoder": "MSD_musicnn/pooled", "fusion_dims": [32], "fusion_dropout": [0.0],
                        "head_lr": 1e-2, "finetune_lr": 1e-2, "unfreeze_epoch": 0},
              "data": {"train_dirs": ["unused"], "batch_size": 8}}
    banks = ("FluidR3_GM", "MuseScore_General")
    plan = {"recipe": str(tmp_path / "recipe.yaml"), "sources": {
        bank: {"train": str(rendered / bank / "train"), "test": str(rendered / bank / "test")} for bank in banks}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    keys = {**recipe["data"], "encoder": recipe["model"]["encoder"], **probe_heads.fold_data(plan, "FluidR3_GM")}
    out = tmp_path / "o"  # where the CLI below finds this fold's files, and builds the other's
    fold = {**probe_heads.cached_embeddings(out / "FluidR3_GM-seed0.pt", keys, 0),
            **probe_heads.midend_inputs(out / "FluidR3_GM-seed0-midend.pt", keys["encoder"], fold_keys=keys)}
    assert fold["train"].shape == (len(fold["encoded"]), 64, 187) and fold["train"].dtype == torch.float16
    assert fold["val"].shape[0] == len(fold["val_encoded"])

    untrained = probe_heads.train_head(fold, {**recipe, "trainer": {"max_epochs": 0}}, 0, [])
    net, part = untrained.encoder.tunable_midends()[0]
    assert (part.start, part.stop) == (1122, 1506)
    again = probe_heads.with_midend(untrained, fold["encoded"], fold["train"])
    assert (again[:, part] - fold["encoded"][:, part]).abs().max() < 0.05  # float16 kept; the scale is ~1-10
    assert torch.equal(again[:, :part.start], fold["encoded"][:, :part.start])

    before = {k: v.clone() for k, v in net.state_dict().items()}
    model = probe_heads.train_head(fold, recipe, 0, [], fold["train"], midend_lr=1e-3)
    after = model.encoder.tunable_midends()[0][0].state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"midend.1.conv.weight", "midend.1.conv.bias", "midend.2.conv.weight", "midend.2.conv.bias"}
    tuned = probe_heads.with_midend(model, fold["encoded"], fold["train"])
    assert not torch.allclose(tuned[:, part], fold["encoded"][:, part])
    solo = fold["targets"].sum(dim=1) == 1
    assert probe_heads.accuracy(model, tuned[solo], fold["targets"][solo]) > 0.5

    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "probe_heads.py"), str(tmp_path / "plan.yaml"),
                           "--head-seeds", "1", "--epochs", "1", "--tune-midend", "1e-4", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} >= {"MuseScore_General-seed0-midend.pt", "excerpts-FluidR3_GM-midend.pt"}
    windows = torch.load(out / "excerpts-FluidR3_GM-midend.pt", weights_only=True)["windows"]
    excerpts = torch.load(out / "excerpts-FluidR3_GM.pt", weights_only=True)
    assert len(windows) == len(excerpts["encoded"])


def test_midend_lr_fine_tunes_musicnns_upper_mid_end_alone_and_the_saved_model_plays_it(tmp_path, rendered):
    from irmas.model import InstrumentClassifier
    from train.data import EmbeddingCache, as_float

    L.seed_everything(0)
    encoder = "MSD_musicnn/pooled"
    system = tiny_system(encoder=encoder, midend_lr=1e-2, unfreeze_epoch=0, fusion_dropout=[0.0, 0.0])
    data = IrmasDataModule(train_dirs=[str(rendered / "FluidR3_GM" / "train")],
                           val_dirs=[str(rendered / "MuseScore_General" / "train")], batch_size=8, encoder=encoder,
                           midend_inputs=True, embedding_cache=str(tmp_path / "cache"))
    before = {k: v.clone() for k, v in system.model.encoder.state_dict().items()}
    trainer(tmp_path, 1).fit(system, data)
    after = system.model.encoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"networks.0.midend.{i}.conv.{p}" for i in (1, 2) for p in ("weight", "bias")}
    # batches carried each clip's first mid-end layer output, kept in the cache beside the embeddings
    waves, _, encoded, first = data.val_set.tensors
    assert first.shape == (len(waves), 1, 64, 187)
    assert len(EmbeddingCache(tmp_path / "cache", encoder, first_midend=True).load()) == len(
        {EmbeddingCache.key(w) for w in torch.cat([data.train_set.tensors[0], waves])})
    # the saved model hears a clip through the fine-tuned layers as training did
    system.model.save_pretrained(tmp_path / "model")
    loaded = InstrumentClassifier.from_pretrained(str(tmp_path / "model")).eval()
    system.model.eval()
    with torch.no_grad():
        trained_path = system.model.encoder.with_midend(encoded[:4], first[:4])
        played = loaded.encode(as_float(waves[:4]))
        assert (played - trained_path).abs().max() < 0.1
        assert (played - encoded[:4]).abs().max() > 0.1  # not the published layers'
    from train.export import model_card

    assert "but for musicnn's two upper mid-end convolutions" in model_card(system.model, midend_tuned=True)
    with pytest.raises(ValueError, match="musicnn's /pooled"):
        tiny_system(encoder="MTT_vgg/pool1", midend_lr=1e-3)
