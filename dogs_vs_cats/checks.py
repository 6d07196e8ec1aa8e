"""Every stage's parameter checks at once, and the keys of params.yaml that no stage reads (the check stage).

Each check lives beside what it checks (splitting.check_split, features.check_extract, ...); this
module only runs them all, so that a bad value stops `dvc repro` before DVC removes any output.
"""

import difflib
from pathlib import Path

import yaml

from dogs_vs_cats.conv_base import check_conv_base, check_weights_tracked
from dogs_vs_cats.core.layout import DVC_FILE
from dogs_vs_cats.core.params import ParamError
from dogs_vs_cats.download import check_download
from dogs_vs_cats.end_to_end import check_augment
from dogs_vs_cats.features import check_extract
from dogs_vs_cats.finetuning import check_finetune, check_layers
from dogs_vs_cats.model import check_train
from dogs_vs_cats.opt_in import check_enabled
from dogs_vs_cats.precisions import check_calibration
from dogs_vs_cats.splitting import check_split


def known_keys(dvc_file=DVC_FILE):
    """Every "section.key" that the stages other than check list among their params in dvc.yaml.

    (dvc.yaml cannot be a dependency of a stage; the check stage tracks the whole of params.yaml.)
    """
    keys = set()
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


def check_every_stage(params):
    """Run the parameter checks of every stage of the pipelines, in pipeline order."""
    check_download(params)
    check_split(params)
    check_conv_base(params)
    check_weights_tracked(params)
    check_calibration(params)  # quantize
    check_extract(params)
    check_train(params)
    check_enabled(params)  # augment and finetune
    check_augment(params)
    check_finetune(params)
    check_layers(params)  # finetune.unfreeze names a layer of the conv base, or fits in it
