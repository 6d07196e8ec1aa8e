"""stages/check.py: every parameter checked, and unknown keys named, before any stage runs."""

import pytest
import yaml

from helpers import REPO, TEST_PARAMS, copy_project, make_raw, merged, write_params
from stages import check

KNOWN = check.known_keys([REPO / path for path in check.DVC_FILES])


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
    with pytest.raises(SystemExit, match=message):
        check.check_keys(merged(TEST_PARAMS, overrides), KNOWN)


def test_main_writes_the_stamp_when_everything_is_valid(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    make_raw(project / "data/raw", 2)
    write_params(project)
    check.main()
    assert check.CHECKED_FILE.read_text() == "params.yaml passed stages/check.py\n"


@pytest.mark.parametrize("overrides, parameter", [
    ({"split": {"raw_dir": "data/nowhere"}}, "split.raw_dir"),
    ({"extract": {"precision": "float8"}}, "extract.precision"),
    ({"conv_base": {"name": "no_such_net"}}, "conv_base.name"),
    ({"conv_base": {"input_size": 16}}, "conv_base.input_size"),  # VGG16 takes 32x32 and up
    ({"train": {"dropout": 1.5}}, "train.dropout"),
    ({"finetune": {"zoom": 1}}, "finetune.zoom"),
    ({"finetune": {"learning_rate": 0}}, "finetune.learning_rate"),
    ({"finetune": {"unfreeze": "block_13_expand"}}, "finetune.unfreeze"),  # not a layer of VGG16
    ({"finetune": {"unfreeze": 19}}, "finetune.unfreeze"),  # VGG16 has 18 layers above its input
])
def test_any_stage_s_bad_value_stops_it_before_writing(tmp_path, monkeypatch, overrides, parameter):
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    make_raw(project / "data/raw", 2)
    write_params(project, overrides)
    with pytest.raises(SystemExit, match=parameter.replace(".", r"\.")):
        check.main()
    assert not check.CHECKED_FILE.exists()
