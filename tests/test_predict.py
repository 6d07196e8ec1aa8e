"""predict.py classifies the readable images it is given, skips the rest and writes CSV or JSON."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

import predict
from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.params import ConvBase
from dogs_vs_cats.model import build_classifier, build_head
from helpers import CLASSES, readme_blocks

SIZE = 32


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny classifier with random weights, exported as train exports it."""
    conv_base, preprocess_input = build_conv_base(ConvBase("mobilenet_v2", None, SIZE, 0), "float32")
    head = build_head(conv_base.output_shape[1:], units=4, dropout=0.5, learning_rate=1e-3, classes=CLASSES)
    path = tmp_path_factory.mktemp("models") / "classifier.keras"
    build_classifier(conv_base, preprocess_input, head, CLASSES).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Three good images (one in a sub-folder), a text file named .jpg and an empty file."""
    rng = np.random.default_rng(0)
    (tmp_path / "more").mkdir()
    for name, size in [("a.jpg", (40, 30)), ("b.png", (20, 50)), ("more/c.jpg", (64, 64))]:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.jpg").write_text("not an image\n")
    (tmp_path / "empty.jpg").touch()
    return tmp_path


GOOD = ["a.jpg", "b.png", "more/c.jpg"]


def run(capsys, *args):
    predict.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return out.splitlines(), err.splitlines()


def test_prints_one_line_per_image_and_skips_the_rest(model_file, folder, capsys):
    out, err = run(capsys, folder, "--model", model_file)

    assert [line.split("\t")[0] for line in out] == [str(folder / name) for name in GOOD]
    for line in out:
        path, label, probability = line.split("\t")
        assert label == ("dog" if float(probability) > 0.5 else "cat")
        assert len(probability.split(".")[1]) == 4 and 0 <= float(probability) <= 1
    assert f"{folder / 'empty.jpg'}: skipped: empty file" in err
    assert (f"{folder / 'notes.jpg'}: skipped: not a readable image "
            "(corrupt, truncated or not an image format extract reads)") in err


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_all_probabilities_adds_one_per_class(model_file, folder, tmp_path, capsys, suffix):
    output = tmp_path / f"predictions{suffix}"
    run(capsys, folder, "--model", model_file, "--output", output, "--all-probabilities")
    if suffix == ".csv":
        with open(output, newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["file", "label", "probability", "P(cat)", "P(dog)"]
        probabilities = [{name: float(row[f"P({name})"]) for name in CLASSES} for row in rows]
    else:
        rows = json.loads(output.read_text())
        probabilities = [row["probabilities"] for row in rows]
    assert len(rows) == len(GOOD)
    for row, each in zip(rows, probabilities, strict=True):
        assert each["dog"] == pytest.approx(float(row["probability"]), abs=1e-6)  # P(second class)
        assert each["cat"] + each["dog"] == pytest.approx(1, abs=2e-6)


def test_all_probabilities_needs_an_output_file(folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(folder), "--all-probabilities"])
    assert exit_info.value.code == 2 and "needs --output" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_writes_the_output_file(model_file, folder, tmp_path_factory, capsys, suffix):
    output = tmp_path_factory.mktemp("out") / f"predictions{suffix}"
    out, _ = run(capsys, folder / "a.jpg", folder / "more", folder / "notes.jpg",
                 "--model", model_file, "--output", output)

    if suffix == ".csv":
        with open(output, newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["file", "label", "probability"]
    else:
        rows = json.loads(output.read_text())
    assert [row["file"] for row in rows] == [str(folder / "a.jpg"), str(folder / "more" / "c.jpg")]
    printed = [line.split("\t") for line in out]
    assert [row["file"] for row in rows] == [path for path, _, _ in printed]
    for row, (_, label, probability) in zip(rows, printed, strict=True):
        assert row["label"] == label
        assert round(float(row["probability"]), 4) == pytest.approx(float(probability), abs=1e-4)
    assert not list(output.parent.glob(".*"))  # no temporary file left behind


def test_nothing_classified_is_a_user_error(model_file, folder, capsys):
    with pytest.raises(UserError, match=r"no image could be classified: all 2 file\(s\) were skipped"):
        run(capsys, folder / "notes.jpg", folder / "missing.jpg", "--model", model_file)
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{folder / 'missing.jpg'}: skipped: cannot read file (No such file or directory)\n" in err


def test_an_empty_folder_is_a_user_error(model_file, tmp_path):
    with pytest.raises(UserError, match="no image could be classified: the paths hold no file"):
        predict.main([str(tmp_path), "--model", str(model_file)])


def test_missing_model_says_how_to_get_one(folder, tmp_path):
    with pytest.raises(UserError, match=r"no model at .*nothing\.keras\. Fix: run `dvc repro`"):
        predict.main([str(folder), "--model", str(tmp_path / "nothing.keras")])


def test_refuses_an_unknown_output_format(folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(folder), "--output", "predictions.txt"])
    assert exit_info.value.code == 2
    assert ".csv or .json" in capsys.readouterr().err


def test_explain_draws_each_classified_image_under_its_heatmap(model_file, folder, tmp_path, capsys):
    """One JPEG per classified image, named after it (a repeated name numbered), in --heatmaps, and
    its path in --output; skipped files get none."""
    (folder / "again").mkdir()
    (folder / "again" / "a.jpg").write_bytes((folder / "a.jpg").read_bytes())
    heatmaps, output = tmp_path / "seen", tmp_path / "predictions.csv"
    out, err = run(capsys, folder / "a.jpg", folder / "notes.jpg", folder / "again", "--model", model_file,
                   "--explain", "--heatmaps", heatmaps, "--output", output)

    assert [line.split("\t")[0] for line in out] == [str(folder / "a.jpg"), str(folder / "again" / "a.jpg")]
    assert sorted(path.name for path in heatmaps.iterdir()) == ["a-2.jpg", "a.jpg"]
    with open(output, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["heatmap"] for row in rows] == [str(heatmaps / "a.jpg"), str(heatmaps / "a-2.jpg")]
    for path in heatmaps.iterdir():
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.width >= 300
    assert f"wrote 2 heatmap(s) to {heatmaps}/" in err


def test_without_explain_nothing_is_drawn_and_heatmaps_alone_is_refused(model_file, folder, tmp_path,
                                                                        monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run(capsys, folder / "a.jpg", "--model", model_file)
    assert not (tmp_path / "heatmaps").exists()
    with pytest.raises(SystemExit):
        predict.main([str(folder / "a.jpg"), "--heatmaps", "elsewhere"])
    assert "--heatmaps DIR needs --explain" in capsys.readouterr().err
    (tmp_path / "a file").touch()
    with pytest.raises(SystemExit):
        predict.main([str(folder / "a.jpg"), "--explain", "--heatmaps", "a file"])
    assert "--heatmaps must be a folder" in capsys.readouterr().err


def test_heatmap_names_differ_in_more_than_case():
    """photo.png and Photo.jpg would be one file on macOS and Windows."""
    rows = [{"file": "x/Photo.jpg"}, {"file": "y/photo.png"}, {"file": "z/photo-2.jpg"}]
    assert [path.name for path in predict.heatmap_paths(rows, predict.HEATMAPS_DIR)] == [
        "Photo.jpg", "photo-2.jpg", "photo-2-2.jpg"]


@pytest.mark.slow
def test_readmes_predict_commands_run_as_written(model_file, tmp_path):
    """README's "## Predict" block, line by line, with the default --model (models/classifier.keras)."""
    import shutil
    import subprocess
    import sys

    (tmp_path / "models").mkdir()
    shutil.copy(model_file, tmp_path / "models" / "classifier.keras")
    (tmp_path / "more_photos").mkdir()
    rng = np.random.default_rng(1)
    for name in ("photo.jpg", "more_photos/a.jpg"):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(tmp_path / name)
    for line in readme_blocks("## Predict")[0]:
        result = subprocess.run(line.replace("python predict.py", f"{sys.executable} {predict.__file__}"),
                                shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (line, result.stderr)
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 3
    with Image.open(tmp_path / "heatmaps" / "photo.jpg") as image:
        assert image.format == "JPEG"
