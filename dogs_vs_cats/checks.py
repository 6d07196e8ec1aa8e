"""Every stage's parameter checks at once, and the keys of params.yaml that no stage reads (the check
stages).

Each check lives beside what it checks (core.params declares every key; splitting.check_split,
conv_base.check_weights_file ...); this module only runs them all, so that a bad value stops
`dvc repro` before DVC removes any output. check_every_stage imports no TensorFlow (the check
stage, after any change of params.yaml); what needs the conv base's architecture is
finetuning.check_layers (the check_model stage, after a change of the conv base or of
finetune.unfreeze only).
"""

import difflib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from dogs_vs_cats.conv_base import check_weights_file, check_weights_tracked
from dogs_vs_cats.core.layout import DVC_FILE
from dogs_vs_cats.core.params import SECTIONS, ParamError, Params
from dogs_vs_cats.splitting import check_split


def known_keys(dvc_file: str | Path = DVC_FILE) -> set[str]:
    """Every "section.key" that the stages other than check list among their params in dvc.yaml.

    (dvc.yaml cannot be a dependency of a stage; the check stage tracks the whole of params.yaml.)
    """
    keys = set()
    for name, stage in yaml.safe_load(Path(dvc_file).read_text())["stages"].items():
        if name != "check":
            keys.update(stage.get("do", stage).get("params", []))
    return keys


def check_keys(params: Mapping[str, Any], known: Collection[str]) -> None:
    """Raise a ParamError for the first key of params.yaml that no stage reads."""
    for section_name, values in params.items():
        for key in (values or {}) if isinstance(values, dict) else [None]:
            name = f"{section_name}.{key}" if key is not None else section_name
            if name not in known:
                closest = difflib.get_close_matches(name, sorted(known), n=1)
                raise ParamError(name, "no stage reads this parameter",
                                 f"did you mean {closest[0]}?" if closest else
                                 f"remove it, or use one of {', '.join(sorted(known))}")


def check_every_stage(params: Params) -> None:
    """Run the parameter checks of every stage of the pipelines, in pipeline order, but those that
    need a conv base's architecture (finetuning.check_layers): none of these imports TensorFlow.

    Args:
        params: params.yaml (core.params.load_params).
    """
    for name in SECTIONS:
        getattr(params, name)
    check_split(params)  # split.raw_dir is there
    check_weights_file(params.conv_base)
    check_weights_tracked(params)  # in weights/, a dependency of the stages that load it
