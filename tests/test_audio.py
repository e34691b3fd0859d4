
import numpy as np
import pytest
import soundfile as sf

from irmas.audio import SAMPLE_RATE, AudioError, from_array, load_audio
from tests.conftest import encode, tone


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_of_every_sample_format_loads_as_mono_float32_at_22050(tmp_path, subtype):
    y = tone(1.0, 44100)
    path = tmp_path / f"x_{subtype}.wav"
    sf.write(path, y, 44100, subtype=subtype)
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - SAMPLE_RATE) <= 2
    assert 0.4 < np.max(np.abs(out)) < 0.6


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_any_rate_and_channel_count_gives_the_same_signal(tmp_path, rate, channels):
    y = tone(1.0, rate, freq=300.0)
    path = tmp_path / "x.flac"
    sf.write(path, np.stack([y] * channels, axis=1), rate)
    out = load_audio(path)
    ref = tone(1.0, SAMPLE_RATE, freq=300.0)
    n = min(len(out), len(ref)) - 200
    assert abs(len(out) - SAMPLE_RATE) <= 2
    # same tone after resampling and downmixing: correlation near 1 away from the edges
    assert np.corrcoef(out[100:n], ref[100:n])[0, 1] > 0.99


@pytest.mark.parametrize("name, codec, container, rate", [
    ("x.ogg", "libopus", "ogg", 48000), ("x.mp3", "libmp3lame", None, 44100), ("x.m4a", "aac", None, 44100),
    ("x.aac", "aac", "adts", 44100), ("x.opus", "libopus", None, 48000), ("x.webm", "libopus", "webm", 48000),
    ("x.mp4", "aac", "mp4", 32000),
])
def test_compressed_formats_decode_without_a_system_ffmpeg(tmp_path, monkeypatch, name, codec, container, rate):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg binary to be found: PyAV decodes in-process
    y = tone(2.0, rate, freq=330.0)
    out = load_audio(encode(tmp_path / name, np.stack([y, 0.5 * y], 1), rate, codec, container))
    assert abs(len(out) / SAMPLE_RATE - 2.0) < 0.1
    ref = tone(2.0, SAMPLE_RATE, freq=330.0)
    lag = int(np.argmax(np.correlate(out[2000:4000], ref[2000:3000], "valid")))  # encoder delay, if any
    n = min(len(out) - lag, len(ref)) - 4000
    assert np.corrcoef(out[2000 + lag:n + lag], ref[2000:n])[0, 1] > 0.98  # the same tone came through


def test_microphone_int16_pair_is_scaled_by_full_range():
    y = tone(1.0, 48000, amp=0.5)
    pcm = (y * 32767).astype(np.int16)
    out = from_array(48000, np.stack([pcm, pcm], axis=1))
    assert abs(np.max(np.abs(out)) - 0.5) < 0.02
    out32 = from_array(48000, (y * 2**31).astype(np.int32))
    assert abs(np.max(np.abs(out32)) - 0.5) < 0.02


@pytest.mark.parametrize("subtype, level_db, steps", [
    ("PCM_U8", -1.0, 114), ("PCM_16", -60.0, 33), ("PCM_16", -50.0, 104),  # coarse: a notice with the step count
    ("PCM_16", -40.0, None), ("PCM_24", -60.0, None), ("FLOAT", -60.0, None),  # fine enough: none
])
def test_a_file_on_a_coarse_sample_grid_gets_a_notice(tmp_path, subtype, level_db, steps):
    y = tone(2.0, 44100) / 0.5 * 10 ** (level_db / 20)  # peak at level_db
    path = tmp_path / "x.wav"
    sf.write(path, np.stack([y, 0.3 * y], 1), 44100, subtype=subtype)
    notices = []
    out = load_audio(path, notices=notices)
    peak = 0.65 * 10 ** (level_db / 20)  # the two channels' mean
    assert abs(np.max(np.abs(out)) - peak) < 0.1 * peak  # loaded as ever
    if steps is None:
        assert notices == []
    else:
        assert len(notices) == 1 and notices[0].startswith("x.wav is very coarse: its loudest sample is only ")
        assert abs(int(notices[0].split("only ")[1].split(" steps")[0]) - steps) <= 1  # the writer's rounding
    assert load_audio(path) is not None  # without a list to fill, nothing is reported and nothing fails


def test_a_quiet_microphone_recording_gets_a_notice_and_a_normal_one_none():
    y = tone(1.0, 48000, amp=1.0)
    quiet, normal = [], []
    from_array(48000, np.round(y * 40).astype(np.int16), notices=quiet)
    from_array(48000, np.round(y * 16000).astype(np.int16), notices=normal)
    assert len(quiet) == 1 and "The recording is very coarse" in quiet[0] and "only 40 steps" in quiet[0]
    assert normal == []


def test_stereo_48k_file_gives_same_samples_as_mono_22k(tmp_path):
    y48, y22 = tone(2.0, 48000), tone(2.0, SAMPLE_RATE)
    sf.write(tmp_path / "s.wav", np.stack([y48, y48], 1), 48000)
    sf.write(tmp_path / "m.wav", y22, SAMPLE_RATE, subtype="FLOAT")
    a, b = load_audio(tmp_path / "s.wav"), load_audio(tmp_path / "m.wav")
    n = min(len(a), len(b)) - 100
    assert np.max(np.abs(a[100:n] - b[100:n])) < 0.02


@pytest.mark.parametrize("rate", [11025, 44100, 48000])
def test_resampling_matches_librosa_load(tmp_path, rate):
    """Same samples as librosa's default loader (soxr HQ, ceil length), which our features were checked on."""
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(rate)
    sf.write(tmp_path / "x.wav", 0.3 * rng.standard_normal((rate * 2 + 7, 2)), rate, subtype="FLOAT")
    ours = load_audio(tmp_path / "x.wav")
    theirs, _ = librosa.load(tmp_path / "x.wav", sr=SAMPLE_RATE, mono=True)
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("empty", "empty"), ("text", "no audio|not an audio file"), ("silent", "silent"), ("short", "at least"),
    ("nan", "NaN"), ("corrupt_header", "not an audio file"), ("missing", "no such file"),
    ("video_no_audio", "no audio"),
])
def test_bad_input_raises_audio_error_with_a_sentence(tmp_path, case, message):
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path = tmp_path / "notes.txt"
        path.write_text("this is not a song\n" * 50)
    elif case == "silent":
        sf.write(path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    elif case == "short":
        sf.write(path, tone(0.01), SAMPLE_RATE)
    elif case == "nan":
        y = tone(1.0)
        y[100] = np.nan
        sf.write(path, y, SAMPLE_RATE, subtype="FLOAT")
    elif case == "corrupt_header":
        sf.write(path, tone(1.0), SAMPLE_RATE)
        data = bytearray(path.read_bytes())
        data[:12] = b"GARBAGEGARBA"
        path.write_bytes(bytes(data))
    elif case == "video_no_audio":
        path = tmp_path / "video.mp4"
        _write_silent_video(path)
    with pytest.raises(AudioError, match=message):
        load_audio(path)


def _write_silent_video(path):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_a_file_longer_than_the_limit_is_refused_without_decoding_it_all(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(tone(1.0), 30), SAMPLE_RATE)
    with pytest.raises(AudioError, match="is 30 s long; the limit is 20 s"):
        load_audio(path, max_seconds=20)
    for name, codec, container in [("long.m4a", "aac", None), ("long.aac", "aac", "adts")]:  # adts: no duration
        encoded = encode(tmp_path / name, np.tile(tone(1.0, 44100), 30), 44100, codec, container)
        with pytest.raises(AudioError, match="limit is 20 s"):
            load_audio(encoded, max_seconds=20)


def test_ten_minutes_of_48k_stereo_is_accepted(tmp_path):
    """The README's promise: up to 10 minutes, whatever the rate and channels (here 48 kHz 24-bit stereo)."""
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", 48000, 2, subtype="PCM_24") as f:
        block = np.stack([tone(10.0, 48000)] * 2, 1)
        for _ in range(59):
            f.write(block)
        f.write(block[:int(9.9 * 48000)])
    out = load_audio(path)
    assert abs(len(out) / SAMPLE_RATE - 599.9) < 0.01


@pytest.mark.parametrize("data, message", [
    (np.zeros(0, dtype=np.int16), "empty"), (np.zeros(22050, dtype=np.int16), "silent"),
    (np.array(["a", "b"]), "not audio"), (np.ones((2, 2, 2), dtype=np.float32), "1-D or 2-D"),
])
def test_bad_microphone_arrays_raise_audio_error(data, message):
    with pytest.raises(AudioError, match=message):
        from_array(22050, data)
