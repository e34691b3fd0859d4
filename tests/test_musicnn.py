"""The musicnn port against the original TensorFlow model's recorded outputs, and the four-branch classifier."""

import shutil
from functools import partial

import numpy as np
import pytest
import torch

from irmas import musicnn
from irmas.model import InstrumentClassifier
from tests.conftest import ROOT, TINY_CHANNELS

# Recorded once by tools/convert_musicnn.py: the original (TensorFlow 2.15, musicnn 0.1.0's models.py, librosa
# 0.10.2 front end) on the first 3 s of two examples.
REFERENCE = np.load(ROOT / "tests" / "data" / "musicnn_reference.npz")


@pytest.mark.parametrize("name", ["MTT_musicnn", "MSD_musicnn"])
def test_port_gives_the_original_outputs_on_its_own_input(name):
    model = musicnn.load_musicnn(name)
    with torch.no_grad():
        penultimate, logits = model(torch.from_numpy(REFERENCE["mel"]), tags=True)
    np.testing.assert_allclose(penultimate.numpy(), REFERENCE[f"{name}/penultimate"], atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), REFERENCE[f"{name}/logits"], atol=1e-4)
    assert np.abs(REFERENCE[f"{name}/penultimate"]).max() > 1  # the reference is not all zeros


@pytest.mark.parametrize("name", ["MTT_vgg", "MSD_vgg"])
def test_vgg_port_gives_the_original_outputs_on_its_own_input(name):
    model = musicnn.load_musicnn(name)
    mel = torch.from_numpy(REFERENCE["mel"])
    with torch.no_grad():
        pool3, logits = model(mel, layer="pool3"), model(mel, layer="tags")
    assert pool3.shape == (2, musicnn.LAYER_DIMS["pool3"])
    np.testing.assert_allclose(pool3.numpy(), REFERENCE[f"{name}/pool3"], atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), REFERENCE[f"{name}/logits"], atol=1e-4)
    assert np.abs(REFERENCE[f"{name}/pool3"]).max() > 1


def test_front_end_gives_the_original_log_mel_from_the_waveform():
    """22,050 Hz waveforms -> 16 kHz -> log-mel as librosa computed it for the original, then its embedding."""
    waves = torch.from_numpy(REFERENCE["waveforms"])
    front = musicnn.MelFrontEnd(int(REFERENCE["sample_rate"]))
    with torch.no_grad():
        mel = front(waves)[:, :musicnn.N_FRAMES]
        penultimate = musicnn.load_musicnn("MTT_musicnn")(mel)
    assert mel.shape == REFERENCE["mel"].shape == (2, 187, 96)
    np.testing.assert_allclose(mel.numpy(), REFERENCE["mel"], atol=2e-3)
    np.testing.assert_allclose(penultimate.numpy(), REFERENCE["MTT_musicnn/penultimate"], atol=1e-3)


def test_weights_that_are_not_the_converted_ones_are_refused(tmp_path, monkeypatch):
    for name in musicnn.WEIGHTS_SHA256:
        shutil.copy(musicnn.weights_path(name), tmp_path)
    damaged = tmp_path / "MTT_musicnn.safetensors"
    data = bytearray(damaged.read_bytes())
    data[-10] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(musicnn, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        musicnn.load_musicnn("MTT_musicnn")
    assert musicnn.load_musicnn("MSD_musicnn") is not None
    with pytest.raises(ValueError, match="unknown musicnn weights"):
        musicnn.load_musicnn("MSD_musicnn_big")


@pytest.fixture(scope="module")
def four_branch():
    torch.manual_seed(0)
    return InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MSD_musicnn").eval()


def test_four_branch_model_saves_and_loads_through_the_hub_mixin(tmp_path, four_branch):
    four_branch.save_pretrained(tmp_path)
    again = InstrumentClassifier.from_pretrained(str(tmp_path), strict=True).eval()
    assert again.encoder_name == "MSD_musicnn"
    x = torch.randn(2, 66150)
    with torch.no_grad():
        assert torch.equal(again(x), four_branch(x))
        # the fourth branch is used: another embedding changes the answer
        bands = four_branch.features(x)
        assert not torch.equal(four_branch.classify(bands, four_branch.encode(x)),
                               four_branch.classify(bands, torch.zeros(2, musicnn.EMBED_DIM)))
    three = InstrumentClassifier(tower_channels=TINY_CHANNELS)
    assert three.encoder is None and three.fusion[0].in_features + musicnn.EMBED_DIM == \
        four_branch.fusion[0].in_features
    pooled = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MSD_musicnn/pooled").eval()
    assert pooled.encode(x).shape == (2, musicnn.POOLED_DIM)
    assert pooled.fusion[0].in_features == three.fusion[0].in_features + musicnn.POOLED_DIM


def test_two_networks_in_the_branch_give_each_ones_embedding_side_by_side(tmp_path):
    torch.manual_seed(0)
    both = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MSD_musicnn/pooled+MTT_vgg/pool3").eval()
    assert both.encoder.dim == musicnn.POOLED_DIM + musicnn.LAYER_DIMS["pool3"] == 3042
    x = torch.randn(3, 66150)
    alone = [InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder=e).encode(x)
             for e in ("MSD_musicnn/pooled", "MTT_vgg")]
    torch.testing.assert_close(both.encode(x), torch.cat(alone, dim=1))
    both.save_pretrained(tmp_path)
    again = InstrumentClassifier.from_pretrained(str(tmp_path), strict=True).eval()
    with torch.no_grad():
        assert torch.equal(again(x), both(x))
    with pytest.raises(ValueError, match="pool3"):
        InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_vgg/pooled")


def test_a_model_saved_with_the_one_network_layout_still_loads(tmp_path, four_branch):
    """Before the branch held several networks its weights were saved as `encoder.*`, not `encoder.networks.0.*`."""
    from safetensors.torch import load_file, save_file

    four_branch.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    stored = load_file(weights)
    assert any(k.startswith("encoder.networks.0.") for k in stored)
    save_file({k.replace("encoder.networks.0.", "encoder."): v for k, v in stored.items()}, weights)
    again = InstrumentClassifier.from_pretrained(str(tmp_path), strict=True).eval()
    x = torch.randn(2, 66150)
    with torch.no_grad():
        assert torch.equal(again(x), four_branch(x))


def test_encoder_branch_is_held_fixed_in_training(four_branch):
    from train.system import InstrumentSystem

    system = InstrumentSystem(tower_channels=TINY_CHANNELS, fusion_dims=[32], fusion_dropout=[0.0], embed_dim=16,
                              encoder="MTT_musicnn", head_lr=1e-2, finetune_lr=1e-2, unfreeze_epoch=0)
    encoder_ids = {id(p) for p in system.model.encoder.parameters()}
    assert not encoder_ids & {id(p) for p in system.model.head_parameters() + system.model.tower_parameters()}
    before = {k: v.clone() for k, v in system.model.encoder.state_dict().items()}
    optimiser = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=1e-2)
    system.train()
    waves, targets = torch.randn(4, 66150), torch.eye(11)[:4]
    loss = system.training_loss((waves, targets))
    loss.backward()
    optimiser.step()
    after = system.model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert system.model.head.weight.grad is not None


def small_encoder_system(**options):
    """A small InstrumentSystem with musicnn's branch, in training mode, the same weights for the same options."""
    from train.system import InstrumentSystem

    torch.manual_seed(0)
    return InstrumentSystem(tower_channels=TINY_CHANNELS, fusion_dims=[32], fusion_dropout=[0.0], embed_dim=16,
                            encoder="MSD_musicnn", unfreeze_epoch=0, **options).train()


def test_tower_branch_dropout_leaves_some_clips_to_the_encoder_alone():
    from train.system import InstrumentSystem

    def system(p):
        return small_encoder_system(tower_branch_dropout=p)

    waves, targets = torch.randn(4, 66150), torch.eye(11)[:4]
    embedded = torch.randn(4, musicnn.EMBED_DIM)
    every = system(1.0)
    loss = every.training_loss((waves, targets, embedded))
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in every.model.tower_parameters())
    assert every.model.head.weight.grad.any()
    with torch.no_grad():  # the towers' input no longer matters, the encoder's does
        assert every.training_loss((torch.randn(4, 66150), targets, embedded)) == pytest.approx(loss.item())
        assert every.training_loss((waves, targets, embedded.flip(0))) != pytest.approx(loss.item())
    none = system(0.0)
    none.training_loss((waves, targets, embedded)).backward()
    assert all(p.grad is not None and p.grad.any() for p in none.model.towers[0].fc1.parameters())
    with pytest.raises(ValueError, match="needs an encoder"):
        InstrumentSystem(tower_channels=TINY_CHANNELS, tower_branch_dropout=0.3)


def test_encoder_branch_dropout_leaves_some_clips_to_the_towers_alone():
    from train.system import InstrumentSystem

    waves, targets = torch.randn(4, 66150), torch.eye(11)[:4]
    embedded = torch.randn(4, musicnn.EMBED_DIM)

    def loss(system, waves, embedded):
        torch.manual_seed(1)  # the same dropout masks and dropped clips in each call
        return system.training_loss((waves, targets, embedded))

    every = small_encoder_system(encoder_branch_dropout=1.0)
    first = loss(every, waves, embedded)
    first.backward()
    assert all(p.grad is not None and p.grad.any() for p in every.model.towers[0].fc1.parameters())
    with torch.no_grad():  # the encoder's embedding no longer matters, the towers' input does
        assert loss(every, waves, embedded.flip(0)) == pytest.approx(first.item())
        assert loss(every, torch.randn(4, 66150), embedded) != pytest.approx(first.item())
        some = small_encoder_system(encoder_branch_dropout=0.5)
        assert loss(some, waves, embedded.flip(0)) != pytest.approx(loss(some, waves, embedded).item())
    with pytest.raises(ValueError, match="needs an encoder"):
        InstrumentSystem(tower_channels=TINY_CHANNELS, encoder_branch_dropout=0.3)


def test_encoder_dropout_hides_the_embedding_in_training_only():
    from train.system import InstrumentSystem

    waves, targets = torch.randn(4, 66150), torch.eye(11)[:4]
    embedded, other = torch.randn(4, musicnn.EMBED_DIM), torch.randn(4, musicnn.EMBED_DIM)
    with torch.no_grad():
        hidden = small_encoder_system(encoder_dropout=1.0)
        torch.manual_seed(1)
        loss = hidden.training_loss((waves, targets, embedded))
        torch.manual_seed(1)
        assert hidden.training_loss((waves, targets, other)) == pytest.approx(loss.item())
        seen = small_encoder_system(encoder_dropout=0.0)
        torch.manual_seed(1)
        loss = seen.training_loss((waves, targets, embedded))
        torch.manual_seed(1)
        assert seen.training_loss((waves, targets, other)) != pytest.approx(loss.item())
    with pytest.raises(ValueError, match="needs an encoder"):
        InstrumentSystem(tower_channels=TINY_CHANNELS, encoder_dropout=0.3)


def test_data_module_computes_each_clips_embedding_once(rendered):
    from train.data import IrmasDataModule, as_float

    data = IrmasDataModule(train_dirs=[str(rendered / "FluidR3_GM" / "train")],
                           val_dirs=[str(rendered / "MuseScore_General" / "train")], batch_size=4,
                           encoder="MTT_musicnn")
    data.setup("fit")
    waves, _, encoded = data.train_set.tensors
    assert encoded.shape == (len(waves), musicnn.EMBED_DIM)
    model = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_musicnn")
    torch.testing.assert_close(encoded[:3], model.encode(as_float(waves[:3])), atol=1e-5, rtol=1e-5)
    assert len(data.val_set.tensors) == 3


def test_embedding_cache_is_read_back_and_completed(rendered, tmp_path):
    from train.data import EmbeddingCache, IrmasDataModule, as_float

    def setup(train_dirs):
        data = IrmasDataModule(train_dirs=[str(rendered / d / "train") for d in train_dirs], batch_size=4,
                               encoder="MTT_musicnn", embedding_cache=str(tmp_path))
        data.setup("fit")
        return data

    first = setup(["FluidR3_GM"])
    cache = EmbeddingCache(tmp_path, "MTT_musicnn")
    stored = cache.load()
    waves, _, encoded = first.train_set.tensors
    assert len(stored) == len({EmbeddingCache.key(w) for w in torch.cat([waves, first.val_set.tensors[0]])})
    # what the cache holds is what the next run uses: mark one clip's entry
    marked = EmbeddingCache.key(waves[0])
    stored[marked] = np.full(musicnn.EMBED_DIM, 7.0, dtype=np.float32)
    cache.save(stored)
    again = setup(["FluidR3_GM"])
    torch.testing.assert_close(again.train_set.tensors[2][1:], encoded[1:])
    assert torch.all(again.train_set.tensors[2][0] == 7.0)
    # clips it has not seen are encoded and added; the others keep their embeddings
    shards = cache.shards()
    more = setup(["FluidR3_GM", "MuseScore_General"])
    assert len(cache.load()) > len(stored)
    # a run adds shards of the clips it encoded alone, and reads back only the clips it asks for
    assert cache.shards()[:len(shards)] == shards and len(cache.shards()) > len(shards)
    added = 0
    for shard in cache.shards()[len(shards):]:
        with np.load(shard) as new:
            added += len(new["keys"])
    assert added == len(cache.load()) - len(stored)
    assert set(cache.load({marked, "not a clip"})) == {marked} and np.all(cache.load({marked})[marked] == 7.0)
    model = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_musicnn")
    new_waves, _, new_encoded = more.train_set.tensors
    torch.testing.assert_close(new_encoded[-2:], model.encode(as_float(new_waves[-2:])), atol=1e-5, rtol=1e-5)


def test_each_network_of_a_joined_encoder_has_its_own_cache(rendered, tmp_path):
    from train.data import EmbeddingCache, IrmasDataModule

    def setup(encoder):
        data = IrmasDataModule(train_dirs=[str(rendered / "FluidR3_GM" / "train")], batch_size=4, encoder=encoder,
                               embedding_cache=str(tmp_path))
        data.setup("fit")
        return data.train_set.tensors[2]

    alone = setup("MTT_musicnn")
    cache = EmbeddingCache(tmp_path, "MTT_musicnn")
    stored = cache.load()
    stored = {k: np.full_like(v, 7.0) for k, v in stored.items()}  # what the joined run takes from the cache
    cache.save(stored)
    joined = setup("MTT_musicnn+MSD_vgg/pool1")
    assert joined.shape == (len(alone), musicnn.EMBED_DIM + musicnn.LAYER_DIMS["pool1"])
    assert torch.all(joined[:, :musicnn.EMBED_DIM] == 7.0)
    assert EmbeddingCache(tmp_path, "MSD_vgg/pool1").path.exists()
    assert not torch.equal(joined[:, musicnn.EMBED_DIM:], torch.zeros_like(joined[:, musicnn.EMBED_DIM:]))


def test_embedding_cache_file_changes_with_the_networks_only(tmp_path, monkeypatch):
    from train.data import EmbeddingCache

    first = EmbeddingCache(tmp_path, "MSD_musicnn/pooled").path
    assert EmbeddingCache(tmp_path, "MTT_musicnn/pooled").path != first
    assert EmbeddingCache(tmp_path, "MSD_musicnn").path != first
    with monkeypatch.context() as patch:
        patch.setitem(musicnn.WEIGHTS_SHA256, "MSD_musicnn", "0" * 64)
        assert EmbeddingCache(tmp_path, "MSD_musicnn/pooled").path != first
    with monkeypatch.context() as patch:
        patch.setattr(musicnn, "BN_EPS", 1e-5)
        assert EmbeddingCache(tmp_path, "MSD_musicnn/pooled").path != first

    class OtherMusicnn(musicnn.Musicnn):
        """other network code"""

    with monkeypatch.context() as patch:
        patch.setattr(musicnn, "Musicnn", OtherMusicnn)
        assert EmbeddingCache(tmp_path, "MSD_musicnn/pooled").path != first

    class OtherBranch(musicnn.EncoderBranch):
        """other plumbing around the same networks"""

    monkeypatch.setattr(musicnn, "EncoderBranch", OtherBranch)
    assert EmbeddingCache(tmp_path, "MSD_musicnn/pooled").path == first


def test_float_embeddings_pair_each_quantised_clip_with_its_originals_embedding(rendered):
    from train.data import IrmasDataModule, as_float

    def setup(**options):
        data = IrmasDataModule(train_dirs=[str(rendered / "FluidR3_GM" / "train")], batch_size=4,
                               encoder="MTT_musicnn", **options)
        data.setup("fit")
        return data.train_set.tensors

    plain_waves, _, plain_encoded = setup()
    waves, _, encoded, originals = setup(quantize_share=0.5, float_embeddings=True)
    stored = (waves != plain_waves).any(dim=1)
    assert 0 < int(stored.sum()) < len(waves)
    torch.testing.assert_close(originals, plain_encoded)  # every clip's original, as it was before quantising
    assert torch.equal(encoded[~stored], originals[~stored])
    assert (encoded[stored] != originals[stored]).any(dim=1).all()
    model = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_musicnn")
    first = int(stored.nonzero()[0])
    torch.testing.assert_close(encoded[first], model.encode(as_float(waves[first:first + 1]))[0], atol=1e-5,
                               rtol=1e-5)
    with pytest.raises(ValueError, match="quantize_share"):
        IrmasDataModule(train_dirs=["x"], encoder="MTT_musicnn", float_embeddings=True)


def test_consistency_pulls_a_coarse_files_output_towards_its_originals():
    torch.manual_seed(1)
    waves, targets = torch.randn(8, 66150), torch.eye(11)[:8]
    originals = torch.randn(8, musicnn.EMBED_DIM)
    coarse = originals.clone()
    coarse[:4] += 0.3 * torch.randn(4, musicnn.EMBED_DIM)  # four clips stored coarsely: the encoder hears them apart
    gaps = {}
    for weight in (0.0, 1.0):
        system = small_encoder_system(consistency=weight)
        optimiser = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=3e-3)
        for _ in range(40):
            optimiser.zero_grad()
            system.training_loss((waves, targets, coarse, originals)).backward()
            optimiser.step()
        system.eval()
        with torch.no_grad():
            towers = system.model.embed_bands(system.model.features(waves[:4]))
            gap = torch.sigmoid(system.model.fuse(towers, coarse[:4])) - torch.sigmoid(system.model.fuse(towers,
                                                                                                        originals[:4]))
        gaps[weight] = float(gap.abs().mean())
    assert gaps[1.0] < 0.5 * gaps[0.0], gaps
    # the clips stored as they were add nothing: the same loss as without the term
    same = small_encoder_system(consistency=3.0), small_encoder_system()
    torch.manual_seed(2)
    with_term = same[0].training_loss((waves, targets, originals, originals))
    torch.manual_seed(2)
    torch.testing.assert_close(with_term, same[1].training_loss((waves, targets, originals)))


def test_a_noise_floor_under_the_encoder_makes_8_bit_and_quiet_16_bit_windows_sound_like_the_float_one(tmp_path):
    import soundfile as sf

    from irmas.predict import normalize
    from train.data import EmbeddingCache

    audio, _ = sf.read(ROOT / "examples" / "cla_pia.ogg", dtype="float32", always_2d=True)
    window = normalize(audio.mean(axis=1)[:66150])

    def stored(level_db, bits):  # as such a file holds the window, read back and peak-normalised
        steps = 2 ** (bits - 1) * 10 ** (level_db / 20)
        return normalize(np.round(window * steps) / steps)

    windows = torch.from_numpy(np.stack([window, stored(-1, 8), stored(-60, 16)]).astype(np.float32))
    drift = {}
    for noise_db in (None, -40.0):
        model = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_musicnn", encoder_noise_db=noise_db)
        encoded = model.encode(windows)
        drift[noise_db] = (encoded[1:] - encoded[0]).norm(dim=1) / encoded[0].norm()
        assert torch.equal(encoded, model.encode(windows))  # the same floor every time
    assert (drift[-40.0] < 0.5 * drift[None]).all(), drift
    model.save_pretrained(tmp_path)
    assert InstrumentClassifier.from_pretrained(str(tmp_path)).encoder.noise_db == -40.0
    assert EmbeddingCache(tmp_path, "MTT_musicnn", -40.0).path != EmbeddingCache(tmp_path, "MTT_musicnn").path


@pytest.mark.parametrize("name", ["MSD_musicnn", "MTT_vgg"])
def test_dead_filters_are_left_out_of_the_convolution_and_give_the_same_outputs(name, monkeypatch):
    """The published weights hold filters that training drove to ~1e-30. A block convolves only the live ones and
    gives each dead one its constant output: the same numbers as convolving them all."""
    model = musicnn.load_musicnn(name)
    if name.endswith("musicnn"):
        block, x, pool = model.timbral[0], torch.randn(2, 1, 193, 96), musicnn._max_over_frequency
    else:
        block, x = model.blocks[1], torch.randn(2, musicnn.VGG_FILTERS, 92, 48)
        pool = partial(musicnn._channels_last_max_pool, kernel_size=(2, 2), stride=(2, 2))
    live = musicnn.live_filters(block.conv.weight)
    assert 0 < int(live.sum()) < len(live)  # the layer has both
    convolved = []
    original = block.conv._conv_forward
    monkeypatch.setattr(block.conv, "_conv_forward", lambda x, w, b: convolved.append(len(w)) or original(x, w, b))
    with torch.no_grad():
        skipped, every = block.max_pooled(x, pool), pool(block(x))
    assert convolved[0] == int(live.sum())
    assert skipped.shape == every.shape
    torch.testing.assert_close(skipped, every, atol=1e-5, rtol=1e-5)


def test_musicnns_mid_end_computed_again_from_its_first_layer_is_the_full_pass():
    """Training fine-tunes musicnn's upper mid-end from each clip's first mid-end layer output, kept in float16;
    with any weights those layers have, that must give the branch's own embedding."""
    model = InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_vgg/pool1+MSD_musicnn/pooled")
    (net, where), = model.encoder.tunable_midends()
    assert where == slice(musicnn.LAYER_DIMS["pool1"] + musicnn.MIDEND_POOLED.start, model.encoder.dim)
    assert {id(p) for p in model.encoder.upper_midend_parameters()} == {
        id(p) for layer in net.midend[1:] for p in (layer.conv.weight, layer.conv.bias)}
    with torch.no_grad():  # weights as training leaves them, not the published ones
        net.midend[1].conv.weight.mul_(1.5)
        net.midend[2].conv.bias.add_(0.3)
    x = torch.randn(3, 66150) * 0.1
    encoded, first = model.encode(x, first_midend=True)
    assert first.shape == (3, 1, musicnn.MIDEND, musicnn.N_FRAMES) and first.dtype == torch.float16
    full = model.encode(x)
    assert torch.equal(encoded, full)
    with torch.no_grad():
        _, exact = musicnn.pooled_and_first_midend(net, model.encoder.front_end(x)[:, :musicnn.N_FRAMES])
        torch.testing.assert_close(model.encoder.with_midend(encoded, exact[:, None]), full, atol=1e-4, rtol=1e-4)
        from_store = model.encoder.with_midend(encoded, first)
    assert (from_store - full).abs().max() < 0.1 < (full[:, where] - 0).abs().max()
    # the mid-end's part alone is computed again: zeroing it in the input changes nothing else
    blank = encoded.clone()
    blank[:, where] = 0
    with torch.no_grad():
        torch.testing.assert_close(model.encoder.with_midend(blank, exact[:, None]), full, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="no network .* mid-end"):
        InstrumentClassifier(tower_channels=TINY_CHANNELS, encoder="MTT_vgg/pool1").encode(x, first_midend=True)
