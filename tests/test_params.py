"""params.yaml is read as DVC reads and writes it, each key declared once with its check and meaning."""

import dataclasses
import re
from dataclasses import fields

import pytest

from dogs_vs_cats.checks import known_keys
from dogs_vs_cats.core.layout import DVC_FILE
from dogs_vs_cats.core.params import SECTIONS, ParamError, Params, load_params
from helpers import REPO, TEST_PARAMS, merged


def test_exponent_floats_that_dvc_writes_are_numbers(tmp_path):
    # `dvc exp run -S train.learning_rate=1e-5` writes `1e-05`: YAML 1.2 reads a float,
    # YAML 1.1 (PyYAML) a string, which the parameter checks would then reject.
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  learning_rate: 1e-05\n  epochs: 30\nconv_base:\n  weights: null\n")
    params = load_params(path).values
    assert params["train"]["learning_rate"] == 1e-5
    assert params["train"]["epochs"] == 30 and isinstance(params["train"]["epochs"], int)
    assert params["conv_base"]["weights"] is None


# --- Each key declared once (core/params.py), and held equal to what reads and documents it -------

def declared_keys():
    return {f"{section}.{field.name}": field for section, cls in SECTIONS.items() for field in fields(cls)}


def test_every_declared_key_is_in_params_yaml_and_read_by_a_stage():
    """What core/params.py declares, what params.yaml holds and what dvc.yaml's stages list as
    their params are the same keys: the check stage's unknown-key check reads dvc.yaml."""
    params = load_params(REPO / "params.yaml").values
    in_file = {f"{section}.{key}" for section, values in params.items() for key in values}
    assert set(declared_keys()) == in_file == known_keys(REPO / DVC_FILE)


def parameter_table(readme, heading):
    """{section.key: row} of the table of `readme` under `heading`; a row's `.key` continues the
    section of the key before it (`split.train`, `.validation`)."""
    text = ("\n" + (REPO / readme).read_text()).split(f"\n{heading}\n", 1)[1]
    rows = {}
    for line in text.split("\n## ", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not line.startswith("| `"):
            continue
        section = None
        for name in re.findall(r"`([\w.]+)`", cells[0]):
            section, key = (section, name[1:]) if name.startswith(".") else name.split(".")
            rows[f"{section}.{key}"] = cells
    return rows


def test_the_readmes_document_every_key():
    """README's table names every key but those of finetune, which finetune/README.md's table gives
    with the default of params.yaml and the meaning core/params.py declares."""
    main = parameter_table("README.md", "## Parameters")
    finetune = parameter_table("finetune/README.md", "# Augmentation and fine-tuning (`finetune.enabled`)")
    declared = declared_keys()
    assert set(main) | set(finetune) == set(declared), "a key is missing from the tables, or one is extra"
    defaults = load_params(REPO / "params.yaml").values["finetune"]
    for name, (_, default, meaning) in finetune.items():
        key = name.split(".")[1]
        assert meaning == declared[name].metadata["meaning"], name
        assert default.strip("`") in (str(defaults[key]), str(defaults[key]).lower()), name


@pytest.mark.parametrize("section, key, value, message", [
    ("train", "units", 0, "train.units: must be a whole number above 0, got 0"),
    ("conv_base", "seed", "zero", "conv_base.seed: must be an integer, got 'zero'"),
    ("finetune", "enabled", "yes", "finetune.enabled: must be true or false, got 'yes'"),
    ("extract", "precision", "int8", "extract.precision: int8 runs on the OpenVINO engine only"),
    ("split", "train", "all", "split.train: must be a whole number above 0 or 'rest', got 'all'"),
])
def test_a_section_is_checked_when_first_read_and_frozen(section, key, value, message):
    values = merged(TEST_PARAMS, {section: {key: value}})
    params = Params(values)
    with pytest.raises(ParamError, match=re.escape(message)):
        getattr(params, section)
    good = Params(TEST_PARAMS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(getattr(good, section), key, value)
