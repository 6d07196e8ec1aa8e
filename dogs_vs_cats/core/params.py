"""Reading params.yaml and checking its values: every stage reads its parameters this way.

    conv_params = check_conv_base(load_params())   # for example

where each `check_*` function of the library takes the whole file (a dict of sections) and returns
the values it uses, or raises a ParamError that names the first bad one. No TensorFlow here.
"""

from ruamel.yaml import YAML

from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.layout import PARAMS_FILE


class ParamError(UserError):
    """A bad value in params.yaml: one line that names the parameter and the fix."""

    def __init__(self, name, problem, fix):
        super().__init__(f"error: params.yaml {name}: {problem}. Fix: {fix}")


def load_params(path=PARAMS_FILE):
    """Read params.yaml as a dict of sections, as DVC reads it: YAML 1.2.

    `dvc exp run -S train.learning_rate=1e-5` writes `1e-05`, a float in YAML 1.2 but a string in
    the YAML 1.1 that PyYAML reads.
    """
    with open(path) as f:
        return YAML(typ="safe", pure=True).load(f) or {}


def section(params, name):
    """One section of params.yaml, as a dict (empty when absent, so its keys are reported missing)."""
    value = params.get(name)
    return value if isinstance(value, dict) else {}


def positive_int(params, name):
    """params[section][key] for name "section.key", if it is an integer > 0; else a ParamError."""
    value = _get(params, name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParamError(name, f"must be a whole number above 0, got {value!r}",
                         f"set {name} to a positive integer")
    return value


def positive_number(params, name):
    """params[section][key] for name "section.key", if it is a number > 0; else a ParamError."""
    value = _get(params, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ParamError(name, f"must be a number above 0, got {value!r}",
                         f"set {name} to a positive number")
    return value


def integer(params, name):
    """params[section][key] for name "section.key", if it is an integer; else a ParamError."""
    value = _get(params, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(name, f"must be an integer, got {value!r}", f"set {name} to e.g. 42")
    return value


def fraction(params, name, example):
    """params[section][key] for name "section.key", if it is a number in [0, 1); else a ParamError."""
    value = _get(params, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ParamError(name, f"must be a fraction in [0, 1), got {value!r}",
                         f"set {name} to e.g. {example}")
    return value


def one_of(params, name, choices):
    """params[section][key] for name "section.key", if it is one of `choices`; else a ParamError."""
    value = _get(params, name)
    if value not in choices:
        raise ParamError(name, f"unknown value {value!r}", f"use one of {', '.join(map(str, choices))}")
    return value


def _get(params, name):
    section_name, key = name.split(".")
    return section(params, section_name).get(key)
