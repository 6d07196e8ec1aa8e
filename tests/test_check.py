"""stages/check.py: every parameter checked, and unknown keys named, before any stage runs."""

import subprocess
import sys

import pytest
import yaml

from dogs_vs_cats.checks import check_keys, known_keys
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import CHECKED_FILE, DVC_FILE, MODEL_CHECKED_FILE
from dogs_vs_cats.core.params import ParamError
from helpers import REPO, TEST_PARAMS, copy_project, make_raw, merged, run, subprocess_env, write_params
from stages import check, check_model

KNOWN = known_keys(REPO / DVC_FILE)


def test_known_keys_are_every_key_the_stages_read():
    assert {f"{section}.{key}" for section, values in TEST_PARAMS.items() for key in values} == KNOWN


def test_check_tracks_the_whole_params_file():
    """So that a key added beside the real one (a misspelt copy) reruns the check."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert stages["check"]["params"] == [{"params.yaml": None}]


@pytest.mark.parametrize("overrides, message", [
    ({"train": {"learnig_rate": 1e-4}}, r"train\.learnig_rate: no stage reads this parameter. "
                                        r"Fix: did you mean train\.learning_rate\?"),
    ({"extra": 3}, r"extra: no stage reads this parameter"),
])
def test_unknown_keys_are_named_with_the_closest_known_one(overrides, message):
    with pytest.raises(ParamError, match=message):
        check_keys(merged(TEST_PARAMS, overrides), KNOWN)


def test_main_writes_the_stamp_when_everything_is_valid(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    make_raw(project / "data/raw", 2)
    write_params(project)
    check.main()
    assert CHECKED_FILE.read_text() == "params.yaml passed stages/check.py\n"


@pytest.mark.parametrize("overrides, parameter", [
    ({"split": {"raw_dir": "data/nowhere"}}, "split.raw_dir"),
    ({"extract": {"precision": "float8"}}, "extract.precision"),
    ({"conv_base": {"seed": "zero"}}, "conv_base.seed"),
    ({"conv_base": {"weights": "weights/missing.weights.h5"}}, "conv_base.weights"),
    ({"train": {"dropout": 1.5}}, "train.dropout"),
    ({"finetune": {"zoom": 1}}, "finetune.zoom"),
    ({"finetune": {"learning_rate": 0}}, "finetune.learning_rate"),
])
def test_any_stage_s_bad_value_stops_it_before_writing(tmp_path, monkeypatch, overrides, parameter):
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    make_raw(project / "data/raw", 2)
    write_params(project, overrides)
    with pytest.raises(ParamError, match=parameter.replace(".", r"\.")):
        check.main()
    assert not CHECKED_FILE.exists()


@pytest.mark.parametrize("overrides, parameter", [
    ({"conv_base": {"name": "no_such_net"}}, "conv_base.name"),
    ({"conv_base": {"input_size": 16}}, "conv_base.input_size"),  # VGG16 takes 32x32 and up
    ({"finetune": {"unfreeze": "block_13_expand"}}, "finetune.unfreeze"),  # not a layer of VGG16
    ({"finetune": {"unfreeze": 19}}, "finetune.unfreeze"),  # VGG16 has 18 layers above its input
])
def test_what_needs_the_conv_base_stops_check_model_before_writing(tmp_path, monkeypatch, overrides,
                                                                   parameter):
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    write_params(project, overrides)
    with pytest.raises(ParamError, match=parameter.replace(".", r"\.")):
        check_model.main()
    assert not MODEL_CHECKED_FILE.exists()


def test_the_check_stage_imports_no_tensorflow(tmp_path):
    """It reruns after every change of params.yaml: TensorFlow's seconds of start-up are check_model's."""
    project = copy_project(tmp_path / "project")
    make_raw(project / "data/raw", 2)
    write_params(project)
    probe = ("import sys, runpy; sys.argv = ['check']; "
             "runpy.run_module('stages.check', run_name='__main__'); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=project, env=subprocess_env(), text=True,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (project / CHECKED_FILE).is_file()


def test_run_stage_turns_a_user_error_into_its_one_line_and_exit_status_1():
    def bad_parameter():
        raise ParamError("train.units", "must be an integer > 0, got 0", "set it to 256")

    with pytest.raises(SystemExit) as error:
        run_stage(bad_parameter)
    assert error.value.code == ("error: params.yaml train.units: must be an integer > 0, got 0. "
                                "Fix: set it to 256")
    with pytest.raises(ZeroDivisionError):  # a bug is not the user's to fix: its traceback stays
        run_stage(lambda: 1 / 0)


@pytest.mark.slow
def test_the_stage_prints_one_line_and_exits_1(tmp_path):
    project = copy_project(tmp_path / "project")
    make_raw(project / "data/raw", 2)
    write_params(project, {"train": {"dropout": 1.5}})
    result = subprocess.run([sys.executable, "-m", "stages.check"], cwd=project, env=subprocess_env(),
                            text=True, capture_output=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: params.yaml train.dropout: ")
    assert "Traceback" not in result.stderr


def test_the_download_s_output_may_not_exist_yet(tmp_path, monkeypatch):
    """split.raw_dir: data/download/photos.zip is made by the download stage, which runs after check."""
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    write_params(project, {"split": {"raw_dir": "data/download/photos.zip"}})
    check.main()
    write_params(project, {"split": {"raw_dir": "data/other.zip"}})
    with pytest.raises(ParamError, match=r"split\.raw_dir: no folder or \.zip archive at 'data/other\.zip'"):
        check.main()


def test_a_weights_file_outside_weights_is_refused_with_the_copy_to_make(tmp_path, monkeypatch):
    """DVC tracks weights/ only: a file elsewhere, replaced in place, would leave stale features."""
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    make_raw(project / "data/raw", 2)
    outside = tmp_path / "base.weights.h5"
    outside.write_bytes(b"weights")
    write_params(project, {"conv_base": {"weights": str(outside)}})
    with pytest.raises(ParamError) as error:
        check.main()
    assert str(error.value) == (
        f"error: params.yaml conv_base.weights: {outside} is outside weights/, so DVC would not rerun "
        "extract when it changes. Fix: copy it into weights/ and set conv_base.weights: "
        "weights/base.weights.h5")
    assert not CHECKED_FILE.exists()
    for inside in ("weights/base.weights.h5", str(project / "weights/base.weights.h5")):
        (project / "weights/base.weights.h5").unlink(missing_ok=True)
        (project / "weights/base.weights.h5").symlink_to(outside)  # a link in weights/ is tracked too
        write_params(project, {"conv_base": {"weights": inside}})
        check.main()
        assert CHECKED_FILE.exists()


def test_an_untracked_weights_file_gets_the_dvc_add_that_shares_it(tmp_path, monkeypatch, capsys):
    """Queued experiments and clones see only what git and DVC track: a note, and the one line to run."""
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    make_raw(project / "data/raw", 2)
    (project / "weights/base.weights.h5").write_bytes(b"weights")
    write_params(project, {"conv_base": {"weights": "weights/base.weights.h5"}})
    check.main()
    assert ("note: DVC does not track weights/base.weights.h5, so queued experiments and clones go "
            "without it; `dvc add weights/base.weights.h5` tracks it") in capsys.readouterr().out
    run(project, "git", "init", "-q")  # git must let the .dvc file in: weights/.gitignore
    run(project, "git", "check-ignore", "-q", "weights/base.weights.h5")
    result = subprocess.run(["git", "check-ignore", "-q", "weights/base.weights.h5.dvc"], cwd=project)
    assert result.returncode == 1, "weights/.gitignore hides the .dvc file from git"

    (project / "weights/base.weights.h5.dvc").write_text("outs:\n- path: base.weights.h5\n")
    check.main()
    assert "note:" not in capsys.readouterr().out
    (project / "weights/base.weights.h5").unlink()  # a fresh clone before `dvc pull`
    tracked = (r"conv_base\.weights: no weights file at 'weights/base\.weights\.h5', which DVC tracks\. "
               r"Fix: run `dvc pull weights/base\.weights\.h5\.dvc`")
    with pytest.raises(ParamError, match=tracked):
        check.main()
