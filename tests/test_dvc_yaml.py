"""dvc.yaml declares what each stage reads: every module it imports, every parameter key it uses."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from helpers import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


PACKAGES = ("stages", "dogs_vs_cats")  # the stage entry points and the library


def module_file(name):
    """The file of module `name` in this repository (a module or a package's __init__), or None."""
    path = REPO / name.replace(".", "/")
    for file in (path.with_suffix(".py"), path / "__init__.py"):
        if file.is_file():
            return file
    return None


def imported_modules(path, seen=None):
    """The files of the repository's packages that the module at `path` imports, directly or through
    one another (imports inside functions too: a stage may import TensorFlow's modules late)."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(Path(path).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            file = module_file(name) if name.split(".")[0] in PACKAGES else None
            if file and file not in seen:
                seen.add(file)
                imported_modules(file, seen)
    return seen


def stage_definitions():
    for name, stage in STAGES.items():
        yield name, stage.get("do", stage)  # a foreach stage keeps its definition under `do`


def stage_script(stage):
    module = re.fullmatch(r"python -m (stages\.\w+)(?: .*)?", stage["cmd"]).group(1)
    return REPO / (module.replace(".", "/") + ".py")


def relative(paths):
    return sorted(str(path.relative_to(REPO)) for path in paths)


@pytest.mark.parametrize("name, stage", list(stage_definitions()))
def test_code_deps_are_the_modules_the_stage_imports(name, stage):
    """A file dep for each module imported; a folder dep (dogs_vs_cats/core) for all the modules in it.

    Package __init__ files are read on import too: those outside a folder dep must hold only their
    docstring (test_package_init_files_hold_only_a_docstring), so no dep needs to name them.
    """
    script = stage_script(stage)
    code = [REPO / dep for dep in stage["deps"] if dep.split("/")[0] in PACKAGES]
    folders = [path for path in code if path.is_dir()]
    files = {path for path in code if not path.is_dir()}
    imported = {script} | imported_modules(script)

    def in_folder(file):
        return any(folder in file.parents for folder in folders)

    missing = {file for file in imported if file not in files and not in_folder(file)
               and file.name != "__init__.py"}
    assert not missing, f"{name}: imports {relative(missing)}, not in its deps"
    assert files <= imported, f"{name}: lists {relative(files - imported)}, which it does not import"
    unused = [folder for folder in folders if not any(folder in file.parents for file in imported)]
    assert not unused, f"{name}: lists {relative(unused)}, none of which it imports"
    assert not [file for file in files if in_folder(file)], f"{name}: a file dep inside a folder dep"


def test_package_init_files_hold_only_a_docstring():
    for init in (REPO / "dogs_vs_cats").rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{init}: more than a docstring"


def test_every_stage_file_is_run_by_a_pipeline_and_imports_no_other():
    """stages/ holds exactly the entry points DVC runs; what they share lives in dogs_vs_cats/."""
    scripts = {stage_script(stage) for _, stage in stage_definitions()}
    assert scripts == set((REPO / "stages").glob("*.py")), "stages/ must hold exactly the scripts of dvc.yaml"
    for script in scripts:
        stage_imports = {file for file in imported_modules(script) if file.parent.name == "stages"}
        assert not stage_imports, f"{script.name} imports {relative(stage_imports)}"
        first_lines = ast.get_docstring(ast.parse(script.read_text())).split("\n\n")[0]
        assert f"python -m stages.{script.stem}" in first_lines, f"{script.name}: name the command DVC runs"


@pytest.mark.parametrize("name, stage", [(name, stage) for name, stage in stage_definitions()
                                         if name != "check"])  # check reads the whole file
def test_params_are_listed_key_by_key(name, stage):
    for param in stage.get("params", []):
        assert isinstance(param, str) and param.count(".") == 1, f"{name}: {param}"


def test_no_stage_but_those_that_build_a_conv_base_read_its_module():
    """(and the checks: check, for the weights file; check_model, for the architecture)"""
    readers = {name for name, stage in stage_definitions() if "dogs_vs_cats/conv_base.py" in stage["deps"]}
    assert readers == {"check", "check_model", "quantize", "extract", "train", "augment", "finetune"}


def test_no_stage_but_check_reads_the_end_to_end_code():
    """Changing the code of augment and finetune reruns only them and check_model (finetune.unfreeze),
    whose output never changes."""
    end_to_end_code = {"stages/augment.py", "stages/finetune.py", "dogs_vs_cats/end_to_end.py",
                       "dogs_vs_cats/finetuning.py", "dogs_vs_cats/opt_in.py"}
    readers = {name for name, stage in stage_definitions() if end_to_end_code & set(stage["deps"])}
    assert readers == {"check_model", "augment", "finetune"}


def test_quantize_reads_every_subset_and_keeps_its_model():
    """Calibration photos are chosen by their bytes from every subset, and the int8 model persists, so
    that the stage can keep it when a split change leaves its photos in data/split."""
    quantize = dict(stage_definitions())["quantize"]
    assert [dep for dep in quantize["deps"] if dep.startswith("data/split")] == [
        "data/split/train", "data/split/validation", "data/split/test", "data/split/classes.json"]
    assert not any(param.startswith("split.") for param in quantize["params"])
    assert quantize["outs"] == [{"models/conv_base_int8": {"persist": True}}]


def test_the_download_holds_the_default_raw_dir_and_runs_in_every_pipeline():
    """Its folder is always there (empty with photos of your own), so `dvc status` and `dvc checkout`
    find it whatever split.raw_dir is; split reads the archive as ${split.raw_dir}, no stage by path."""
    download = STAGES["download"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert download["outs"] == [{"data/download": {"persist": True}}]
    assert Path(params["split"]["raw_dir"]).parent == Path("data/download")
    assert "split.raw_dir" in download["params"]
    assert not [name for name, stage in stage_definitions()
                if any(dep.startswith("data/download") for dep in stage["deps"])]
    assert "${split.raw_dir}" in STAGES["split"]["deps"]
