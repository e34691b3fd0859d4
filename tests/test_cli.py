"""`python -m irmas predict|evaluate` as a user runs them."""

import json
import shutil

import soundfile as sf

from tests.conftest import run_cli, tone


def test_predict_json_on_a_folder_reports_each_file_and_survives_a_bad_one(tmp_path, tiny_model_dir):
    folder = tmp_path / "music"
    folder.mkdir()
    for i in range(12):
        sf.write(folder / f"clip{i:02d}.wav", tone(2.0 + i, freq=110.0 * (i + 1)), 22050)
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    proc = run_cli("predict", str(folder), "--model", str(tiny_model_dir), "--json", check=False)
    assert proc.returncode == 1  # a script can tell that a file was not predicted
    assert "1 of 13 files could not be read" in proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 13
    bad = [r for r in rows if "error" in r]
    assert len(bad) == 1 and bad[0]["file"].endswith("broken.wav")
    good = [r for r in rows if "error" not in r]
    assert all(len(r["probabilities"]) == 11 and isinstance(r["detected"], list) and r["summary"] for r in good)
    long = next(r for r in good if r["file"].endswith("clip11.wav"))  # 13 s
    assert len(long["timeline"]["window_starts"]) == 8
    assert f"model from the folder {tiny_model_dir.name}" in proc.stderr


def test_predict_text_output_names_instruments(tmp_path, tiny_model_dir):
    sf.write(tmp_path / "a.wav", tone(3.0), 22050)
    proc = run_cli("predict", str(tmp_path / "a.wav"), "--model", str(tiny_model_dir))
    assert proc.stdout.startswith(str(tmp_path / "a.wav") + ": ")
    assert "note:" not in proc.stdout


def test_predict_says_when_a_file_is_too_coarse_to_hear_well(tmp_path, tiny_model_dir):
    sf.write(tmp_path / "8bit.wav", tone(3.0), 22050, subtype="PCM_U8")
    proc = run_cli("predict", str(tmp_path / "8bit.wav"), "--model", str(tiny_model_dir))
    assert "\n  note: 8bit.wav is very coarse: its loudest sample is only 64 steps above silence" in proc.stdout
    row = json.loads(run_cli("predict", str(tmp_path / "8bit.wav"), "--model", str(tiny_model_dir), "--json").stdout)
    assert len(row["notices"]) == 1 and "quieter instruments may be missed" in row["notices"][0]


def test_evaluate_training_layout_reports_accuracy_and_counts_failures(tmp_path, rendered, tiny_model_dir):
    folder = tmp_path / "train"
    shutil.copytree(rendered / "FluidR3_GM" / "train", folder)
    (folder / "cel" / "[cel][nod][cla]9999__1.wav").write_bytes(b"not audio at all")
    proc = run_cli("evaluate", str(folder), "--model", str(tiny_model_dir), "--json")
    result = json.loads(proc.stdout)
    assert result["layout"] == "training"
    assert result["n_files"] == 11 * 6 and result["n_failed"] == 1
    assert 0.0 <= result["accuracy"] <= 1.0 and set(result["per_class"]) == set(
        ["cel", "cla", "flu", "gac", "gel", "org", "pia", "sax", "tru", "vio", "voi"])
    assert "macro_f1" in result and "threshold" in result


def test_evaluate_testing_layout_reports_irmas_protocol(rendered, tiny_model_dir):
    proc = run_cli("evaluate", str(rendered / "MuseScore_General" / "test"), "--model", str(tiny_model_dir),
                   "--json", "--threshold", "0.3")
    result = json.loads(proc.stdout)
    assert result["layout"] == "testing" and result["n_files"] == 4 and result["threshold"] == 0.3
    for key in ("micro_precision", "micro_recall", "micro_f1", "macro_precision", "macro_recall", "macro_f1"):
        assert 0.0 <= result[key] <= 1.0
    text = run_cli("evaluate", str(rendered / "MuseScore_General" / "test"), "--model", str(tiny_model_dir))
    assert "micro_f1" in text.stdout and "per-class F1" in text.stdout
