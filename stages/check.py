"""Check params.yaml before any other stage runs: python -m stages.check

DVC removes a stage's outputs before it runs the stage, so a bad parameter found by `train` costs
the user the metrics and models of the previous run. This stage comes first in the pipeline (split
depends on its output) and runs every stage's own parameter checks, so DVC stops here, before it
removes anything. It also reports keys that no stage reads (a typo such as `train.learnig_rate`),
with the closest known key, and a missing raw folder by its parameter, before DVC reports the
missing `split` dependency by its path. The parameters of the opt-in pipeline finetune/dvc.yaml are
checked too: they share params.yaml, and its stages also run after this one.

Writes data/params.checked, whose content never changes: it only orders the stages.
"""

import difflib
from pathlib import Path

import yaml

from stages import augment, extract, finetune, quantize, split, train
from stages.atomic import atomic_path
from stages.params import ParamError, load_params

DVC_FILES = (Path("dvc.yaml"), Path("finetune/dvc.yaml"))  # the main pipeline, the opt-in one
CHECKED_FILE = Path("data/params.checked")


def known_keys(dvc_files=DVC_FILES):
    """Every "section.key" that the other stages list among their params in the dvc.yaml files.

    (dvc.yaml cannot be a dependency of a stage; this stage tracks the whole of params.yaml.)
    """
    keys = set()
    for dvc_file in dvc_files:
        for name, stage in yaml.safe_load(Path(dvc_file).read_text())["stages"].items():
            if name != "check":
                keys.update(stage.get("do", stage).get("params", []))
    return keys


def check_keys(params, known):
    """Raise a ParamError for the first key of params.yaml that no stage reads."""
    for section_name, values in params.items():
        for key in (values or {}) if isinstance(values, dict) else [None]:
            name = f"{section_name}.{key}" if key is not None else section_name
            if name not in known:
                closest = difflib.get_close_matches(name, sorted(known), n=1)
                raise ParamError(name, "no stage reads this parameter",
                                 f"did you mean {closest[0]}?" if closest else
                                 f"remove it, or use one of {', '.join(sorted(known))}")


def main():
    params = load_params()
    check_keys(params, known_keys())
    for stage in (split, quantize, extract, train, augment, finetune):
        stage.check_params(params)
    finetune.check_layers(params)  # finetune.unfreeze names a layer of the conv base, or fits in it
    with atomic_path(CHECKED_FILE) as tmp:
        tmp.write_text("params.yaml passed stages/check.py\n")
    print("params.yaml: every key is read by a stage and every value is valid")


if __name__ == "__main__":
    main()
