"""`python -m bench` is documented as running everything: its argument handling must allow that.
`bench.fit` times a real `train fit`: its table must describe the run that happened."""

import numpy as np
import pytest
import yaml

from bench.__main__ import ALL, parse_args


def test_no_arguments_runs_every_benchmark_and_names_pick_some():
    assert parse_args([]).which == list(ALL)
    assert parse_args(["features", "startup"]).which == ["features", "startup"]


def test_an_unknown_benchmark_is_refused():
    with pytest.raises(SystemExit):
        parse_args(["nope"])


def test_fit_benchmark_reports_each_epoch_of_a_real_run_with_its_phase(tmp_path):
    from bench.fit import run

    report = run("starter.yaml", clips=44, epochs=2, unfreeze_epoch=1, work=tmp_path,
                 extra=["--model.tower_channels=[4, 8]", "--data.batch_size=8"])
    assert "44 clips" in report and "precision 32-true, batch 8" in report
    rows = [line.split("|")[1:-1] for line in report.splitlines() if line.startswith("| ") and "epoch" not in line]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [("0", "towers held"), ("1", "all training")]
    written = len(list(tmp_path.glob("IRMAS-TrainingData/*/*.wav")))
    assert written == 44
    for r in rows:  # whole batches of the training split (drop_last), never more than the clips written
        samples = int(r[2])
        assert samples % 8 == 0 and 0 < samples <= written
        assert float(r[3]) > 0 and float(r[6]) >= float(r[3])


def test_fit_benchmark_steps_as_many_clips_as_the_configs_processes_together(tmp_path):
    """starter.yaml trains as two DDP processes; the benchmark's one process takes both their clips."""
    from bench.fit import CONFIGS, run

    settings = yaml.safe_load((CONFIGS / "starter.yaml").read_text())
    assert settings["trainer"]["devices"] == 2
    report = run("starter.yaml", clips=44, epochs=1, unfreeze_epoch=None, work=tmp_path,
                 extra=["--model.tower_channels=[4, 8]"])
    assert f"batch {2 * settings['data']['batch_size']}," in report


def test_load_benchmark_reports_memory_after_each_round_of_concurrent_clients():
    from bench.load import run

    report = run(rounds=2, clients=2, requests=2)
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in report.splitlines() if line.startswith("| ")]
    assert [r[0] for r in rows[1:]] == ["after one request", "round 1", "round 2"]
    for r in rows[2:]:
        assert r[1] == "4" and float(r[2]) > 0 and 100 < float(r[4]) <= float(r[5])  # 2 x 2 requests, RSS <= peak


def test_inference_benchmark_sets_the_bundled_model_beside_its_variant_with_or_without_musicnn():
    from bench.inference import run
    from irmas.hub import load_model

    report = run(repeat=1, cnn14=False)
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:-1]]
            for line in report.splitlines() if line.startswith("| cpu")}
    bundled = load_model(None).model
    variant = "three bands only" if bundled.encoder is not None else "with musicnn branch"
    networks = bundled.encoder_name.split("+") if bundled.encoder is not None else []
    others = [variant] + ([f"{networks[0]} only"] if len(networks) > 1 else [])
    assert set(rows) == {"bundled", *others, *(f"ratio {o} / bundled" for o in others)}
    params = {name: float(rows[name][0].split()[0]) for name in ("bundled", *others)}
    # the musicnn branch adds its 0.8 M weights and a wider fusion input, the VGG its 0.6 M
    assert (params["bundled"] > params[variant]) == (variant == "three bands only")
    assert all(params[o] < params["bundled"] for o in others[1:])
    for name in ("bundled", *others):
        assert all(float(v) > 0 for v in rows[name][1:])
        if name != "bundled":
            assert all(v.endswith("x") for v in rows[f"ratio {name} / bundled"][1:])


def test_robustness_benchmark_stores_each_copy_and_the_float_control_agrees(rendered, tmp_path):
    """Each excerpt gets a row per kind of file; the float file at -60 dBFS must give the float answer exactly
    (prediction normalises the level), while an 8-bit file really is another file (its probabilities move)."""
    from bench.robustness import COPIES, run

    out = run(sets=[("rendered", rendered / "FluidR3_GM" / "test"), ("absent", tmp_path / "none")], per_set=3)
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| rendered")]
    assert [r[2] for r in rows] == list(COPIES) and all(r[1] == "3" for r in rows)
    control = rows[0]
    assert control[3:6] == ["1.000", "0.000", "0.000"]
    assert control[6].split(" -> ")[0] == control[6].split(" -> ")[1]
    eight_bit, noisy = rows[1], rows[3]
    assert float(eight_bit[4]) > 0.001 and float(noisy[4]) > 0.001


def test_others_benchmark_plays_each_unheard_instrument_alone_and_counts_every_clip():
    """Each clip is its instrument alone, seeded (the same clip twice, another for the next index), and the
    table has a row per installed bank and instrument, counting every clip; a bank not installed is skipped."""
    from bench.others import Renderer, clip, run

    renderer = Renderer(22050)
    renderer.begin("FluidR3_GM")
    oboe = clip(renderer, 68, 0)
    renderer.begin("FluidR3_GM")
    assert np.array_equal(oboe, clip(renderer, 68, 0))
    renderer.begin("FluidR3_GM")
    assert not np.array_equal(oboe, clip(renderer, 68, 1))
    assert oboe.shape == (5 * 22050,) and np.sqrt(np.mean(oboe ** 2)) > 0.01

    report = run(clips=2, banks=("FluidR3_GM", "/nowhere/none.sf2"), programs=(68, 105))
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in report.splitlines() if line.startswith("| F")]
    assert [r[:2] for r in rows] == [["FluidR3_GM", "oboe"], ["FluidR3_GM", "banjo"]]
    named = [int(r[2].split(" / ")[0]) for r in rows]
    assert all(r[2].endswith("/ 2") for r in rows) and all(0 <= n <= 2 for n in named)
    assert f"({sum(named) / 4:.2f} of 4" in report


def test_live_benchmark_counts_changes_and_the_seconds_an_answer_takes_to_follow_new_music():
    from bench.live import changes_per_minute, seconds_to_follow

    probabilities = np.zeros(11)
    answers = [(frozenset(named), probabilities) for named in
               ["", "a", "a", "a", "ab", "a", "a", "b", "b", "b"]]  # after each second
    # from the third second on: a a ab a a b b b, 3 changes in 7 steps of a second
    assert changes_per_minute(answers) == pytest.approx(60 * 3 / 7)
    # the music changes after 5 s; the answer names b without a from second 8 on, and keeps doing so
    assert seconds_to_follow(answers, 5, {"a"}, {"b"}) == 3
    assert np.isnan(seconds_to_follow(answers[:8] + answers[4:5], 5, {"a"}, {"b"}))  # a at the end again


def test_live_benchmark_holds_a_named_instrument_as_the_app_does():
    from bench.live import answers

    probabilities = [np.array([p, 0.0]) for p in (0.35, 0.28, 0.25, 0.28, 0.33)]
    said = answers(probabilities, ["a", "b"], 0.31, hold=0.05)
    assert [sorted(named) for named, _ in said] == [["a"], ["a"], [], [], ["a"]]
    assert [sorted(n) for n, _ in answers(probabilities, ["a", "b"], 0.31, hold=0.0)] == [["a"], [], [], [], ["a"]]


def test_live_benchmark_replays_each_rule_on_every_excerpt_and_pair(rendered, tmp_path):
    from bench.live import RULES, run

    report = run(sets=[("rendered", rendered / "FluidR3_GM" / "test"), ("absent", tmp_path / "none")],
                 per_set=4, pairs=2)
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in report.splitlines() if line.startswith("| rendered")]
    assert [r[1] for r in rows] == list(RULES)
    for r in rows:
        assert float(r[2]) >= 0 and 0 <= float(r[3]) <= 1 and float(r[6]) > 0
        followed, never = r[4], int(r[5].split(" of ")[0])
        assert r[5].endswith(" of 2") and (followed == "-") == (never == 2)


def test_microphone_benchmark_reads_the_live_verdict_as_instrument_codes():
    from bench.microphone import heard_codes

    line = "Heard: electric guitar, acoustic guitar and trumpet. Listened to 12 s; the answer is about the last 5 s."
    assert heard_codes(line) == {"gel", "gac", "tru"}
    assert heard_codes("Heard: voice. Listened to 6 s") == {"voi"}
    assert heard_codes("None of the 11 instruments is heard (the closest, flute, is at 0.20, below ...)") == set()
