"""dvc.yaml and finetune/dvc.yaml declare what each stage reads: every module it imports, every
parameter key it uses."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from helpers import REPO

DVC_FILES = ("dvc.yaml", "finetune/dvc.yaml")  # the main pipeline, the opt-in one
STAGES = {name: stage for path in DVC_FILES
          for name, stage in yaml.safe_load((REPO / path).read_text())["stages"].items()}


def imported_modules(path, seen=None):
    """The files of stages/ that the module at `path` imports, directly or through one another."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(Path(path).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            file = REPO / (name.replace(".", "/") + ".py")
            if name.startswith("stages.") and file.is_file() and file not in seen:
                seen.add(file)
                imported_modules(file, seen)
    return seen


def stage_definitions():
    for name, stage in STAGES.items():
        yield name, stage.get("do", stage)  # a foreach stage keeps its definition under `do`


@pytest.mark.parametrize("name, stage", list(stage_definitions()))
def test_code_deps_are_the_modules_the_stage_imports(name, stage):
    module = re.fullmatch(r"python -m (stages\.\w+)(?: .*)?", stage["cmd"]).group(1)
    script = REPO / (module.replace(".", "/") + ".py")
    expected = {script} | imported_modules(script)
    declared = {REPO / dep for dep in stage["deps"] if dep.startswith("stages/")}
    def names(paths):
        return sorted(str(path.relative_to(REPO)) for path in paths)

    assert declared == expected, (f"{name}: missing {names(expected - declared)}, "
                                  f"not imported {names(declared - expected)}")


@pytest.mark.parametrize("name, stage", [(name, stage) for name, stage in stage_definitions()
                                         if name != "check"])  # check reads the whole file
def test_params_are_listed_key_by_key(name, stage):
    for param in stage.get("params", []):
        assert isinstance(param, str) and param.count(".") == 1, f"{name}: {param}"


def test_stage_names_are_unique_across_the_pipelines():
    assert len(STAGES) == sum(len(yaml.safe_load((REPO / path).read_text())["stages"]) for path in DVC_FILES)


def test_no_stage_but_those_that_build_a_conv_base_read_its_module():
    """(and check, which runs every stage's parameter checks first)"""
    readers = {name for name, stage in stage_definitions() if "stages/conv_base.py" in stage["deps"]}
    assert readers == {"check", "quantize", "extract", "train", "augment", "finetune"}


def test_the_finetune_pipeline_works_from_the_repository_root():
    """So that its paths, and the params.yaml it reads, are those of the top-level pipeline."""
    stages = yaml.safe_load((REPO / "finetune/dvc.yaml").read_text())["stages"]
    assert {stage.get("wdir") for stage in stages.values()} == {".."}


def test_no_main_stage_reads_the_finetune_pipeline_but_check():
    """Changing the opt-in pipeline's code reruns only check, whose output never changes."""
    finetune_code = {"stages/augment.py", "stages/finetune.py", "stages/end_to_end.py"}
    main = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    readers = {name for name, stage in main.items() if finetune_code & set(stage.get("do", stage)["deps"])}
    assert readers == {"check"}


def test_quantize_reads_train_images_only():
    """Calibration never sees the test images: changing split.test cannot rerun quantize."""
    quantize = dict(stage_definitions())["quantize"]
    assert [dep for dep in quantize["deps"] if dep.startswith("data/")] == ["data/split/train"]
    assert not any(param.startswith("split.") for param in quantize["params"])
