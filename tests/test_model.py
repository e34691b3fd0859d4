import json

import pytest
import torch

from irmas.labels import CODES
from irmas.model import CheckpointError, InstrumentClassifier, for_inference, load_panns_weights
from tests.conftest import TINY_CHANNELS


def test_model_takes_waveforms_and_gives_one_logit_per_irmas_label(tiny_model):
    out = tiny_model(torch.randn(3, 66150))
    assert out.shape == (3, 11)
    assert tiny_model.labels == list(CODES)


@pytest.mark.parametrize("rate, random", [(0.0, False), (0.2, True)])
def test_tower_dropout_is_the_configured_rate(rate, random):
    """In training mode the towers drop out at `tower_dropout`; 0 leaves them deterministic."""
    torch.manual_seed(0)
    model = InstrumentClassifier(tower_channels=list(TINY_CHANNELS), tower_dropout=rate).train()
    tower = model.towers[0]
    outputs = []  # the last block sees the earlier blocks' dropout (fc1's own dropout comes after it)
    tower.blocks[-1].register_forward_hook(lambda module, args, out: outputs.append(out))
    spec = torch.randn(4, 40, tower.bn0.num_features)
    tower(spec), tower(spec)
    assert (not torch.equal(*outputs)) == random


def test_save_pretrained_writes_config_with_labels_rate_and_bands(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["labels"] == list(CODES)
    assert config["sample_rate"] == 22050
    assert [(b["f_min"], b["f_max"], b["n_fft"]) for b in config["bands"]] == [
        (0.0, 1000.0, 1024), (1000.0, 4000.0, 512), (4000.0, 11025.0, 256)]
    assert config["tower_channels"] == TINY_CHANNELS
    assert (tiny_model_dir / "model.safetensors").is_file()


def test_loaded_model_gives_identical_outputs(tiny_model_dir, tiny_model):
    again = InstrumentClassifier.from_pretrained(str(tiny_model_dir), strict=True).eval()
    x = torch.randn(2, 66150)
    assert torch.equal(again(x), tiny_model(x))


def test_for_inference_folds_batchnorm_without_changing_outputs(tiny_model_dir):
    model = InstrumentClassifier.from_pretrained(str(tiny_model_dir), strict=True).eval()
    with torch.no_grad():  # trained-looking statistics, so the folding has something to fold
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 66150)
    expected = model(x)
    fast = for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for tower in fast.towers for m in tower.blocks.modules())
    assert fast.towers[0].blocks[1].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(for_inference(fast)(x), expected, atol=1e-4, rtol=1e-4)  # twice is harmless


def test_for_inference_flushes_subnormal_floats(tiny_model_dir):
    """Subnormal weights (training leaves some) cost Intel CPUs up to 80x the time: they are computed as zeros."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormal floats")
    subnormal = torch.tensor([1e-39])
    assert (subnormal * 1.0).item() != 0.0
    for_inference(InstrumentClassifier.from_pretrained(str(tiny_model_dir), strict=True))
    assert (subnormal * 1.0).item() == 0.0


def test_time_pool_averages_frames_before_the_towers_and_travels_in_the_config(tmp_path):
    """With `time_pool` 4 a tower sees the spectrogram averaged over groups of 4 frames (a quarter of the
    work); config.json carries the setting, and a config saved before it existed loads as 1 (no pooling)."""
    torch.manual_seed(0)
    pooled = InstrumentClassifier(tower_channels=list(TINY_CHANNELS), time_pool=4).eval()
    plain = InstrumentClassifier(tower_channels=list(TINY_CHANNELS), time_pool=1).eval()
    plain.load_state_dict(pooled.state_dict())
    spec = torch.randn(2, 40, pooled.towers[0].bn0.num_features)
    averaged = spec.reshape(2, 10, 4, -1).mean(dim=2)
    torch.testing.assert_close(pooled.towers[0](spec), plain.towers[0](averaged))
    assert not torch.allclose(pooled.towers[0](spec), plain.towers[0](spec))

    pooled.save_pretrained(tmp_path / "pooled")
    config = json.loads((tmp_path / "pooled" / "config.json").read_text())
    assert config["time_pool"] == 4
    again = InstrumentClassifier.from_pretrained(str(tmp_path / "pooled"), strict=True).eval()
    x = torch.randn(1, 66150)
    assert again.towers[0].time_pool == 4 and torch.equal(again(x), pooled(x))
    del config["time_pool"]
    (tmp_path / "pooled" / "config.json").write_text(json.dumps(config))
    older = InstrumentClassifier.from_pretrained(str(tmp_path / "pooled"), strict=True)
    assert [tower.time_pool for tower in older.towers] == [1, 1, 1]


def test_loading_weights_of_another_architecture_fails_loudly(tmp_path, tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["tower_channels"] = [4, 8, 16]
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes((tiny_model_dir / "model.safetensors").read_bytes())
    with pytest.raises(RuntimeError):
        InstrumentClassifier.from_pretrained(str(tmp_path), strict=True)


def panns_checkpoint(path, channels):
    """A file in the official PANNs Cnn14 format: {'model': state_dict} with its key names."""
    state = {"spectrogram_extractor.stft.conv_real.weight": torch.randn(513, 1, 1024),
             "logmel_extractor.melW": torch.randn(513, 64),
             "bn0.weight": torch.randn(64), "bn0.bias": torch.randn(64), "bn0.running_mean": torch.randn(64),
             "bn0.running_var": torch.rand(64), "bn0.num_batches_tracked": torch.tensor(5)}
    widths = (1, *channels)
    for i in range(len(channels)):
        c_in, c_out = widths[i], widths[i + 1]
        state[f"conv_block{i + 1}.conv1.weight"] = torch.randn(c_out, c_in, 3, 3)
        state[f"conv_block{i + 1}.conv2.weight"] = torch.randn(c_out, c_out, 3, 3)
        for bn in ("bn1", "bn2"):
            for name, value in (("weight", torch.randn(c_out)), ("bias", torch.randn(c_out)),
                                ("running_mean", torch.randn(c_out)), ("running_var", torch.rand(c_out)),
                                ("num_batches_tracked", torch.tensor(7))):
                state[f"conv_block{i + 1}.{bn}.{name}"] = value
    state["fc1.weight"] = torch.randn(channels[-1], channels[-1])
    state["fc1.bias"] = torch.randn(channels[-1])
    state["fc_audioset.weight"] = torch.randn(527, channels[-1])
    state["fc_audioset.bias"] = torch.randn(527)
    torch.save({"iteration": 600000, "model": state, "sampler": {}}, path)
    return state


def test_panns_checkpoint_loads_into_every_tower_of_the_same_width(tmp_path):
    channels = [4, 8, 16, 32, 64, 128]  # Cnn14's six blocks, narrowed so the test file is small
    state = panns_checkpoint(tmp_path / "Cnn14_mAP=0.431.pth", channels)
    model = InstrumentClassifier(tower_channels=channels)
    report = load_panns_weights(model, tmp_path / "Cnn14_mAP=0.431.pth")
    for t in range(3):
        assert torch.equal(model.towers[t].blocks[3].conv2.weight, state["conv_block4.conv2.weight"])
        assert torch.equal(model.towers[t].fc1.weight, state["fc1.weight"])
        assert torch.equal(model.towers[t].blocks[0].bn1.running_var, state["conv_block1.bn1.running_var"])
    assert len(report.used) == 3 * (6 * 12 + 2)
    assert "bn0.weight" in report.skipped and "fc_audioset.weight" in report.skipped
    assert "logmel_extractor.melW" in report.skipped
    assert all(k.split(".")[2] in ("bn0", "embed") for k in report.missing)


def test_panns_checkpoint_into_a_smaller_tower_skips_what_does_not_fit(tmp_path):
    panns_checkpoint(tmp_path / "ckpt.pth", [4, 8, 16, 32, 64, 128])
    model = InstrumentClassifier(tower_channels=[4, 8])
    report = load_panns_weights(model, tmp_path / "ckpt.pth")
    assert "towers.0.blocks.1.conv2.weight" in report.used
    assert "fewer blocks" in report.skipped["conv_block3.conv1.weight"]
    assert "does not fit" in report.skipped["fc1.weight"]


def test_a_pickled_object_in_a_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pickle ran",))

    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_panns_weights(InstrumentClassifier(tower_channels=[4]), tmp_path / "evil.pth")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no PANNs CNN weights"):
        load_panns_weights(InstrumentClassifier(tower_channels=[4]), tmp_path / "other.pth")
