"""params.yaml, read once and checked: one frozen dataclass per section, each key declared once.

    params = load_params()
    params.train.batch_size        # 20: read and checked when the section is first used

Each key of each section is a field declared with `key(check, meaning)`: `check(value, name)`
returns the value, or raises a ParamError whose one line names `section.key`, the problem and the
fix; `meaning` is the one line README's parameter table says of it (tests/test_params.py holds them
equal, and holds these fields equal to the keys that dvc.yaml's stages list and params.yaml holds).
What needs more than the value (a file on disk, a conv base's layers) is checked where it is used:
split.raw_dir (splitting.check_split), conv_base.name, .input_size and .weights (conv_base),
finetune.unfreeze's layer (finetuning.check_layers). No TensorFlow here.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

from ruamel.yaml import YAML

from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.layout import PARAMS_FILE


class ParamError(UserError):
    """A bad value in params.yaml: one line that names the parameter and the fix."""

    def __init__(self, name: str, problem: str, fix: str):
        super().__init__(f"error: params.yaml {name}: {problem}. Fix: {fix}")


# --- Checks of one value: check(value, "section.key") -> value, or a ParamError ------------------

Check = Callable[[Any, str], Any]
_Section = TypeVar("_Section")


def positive_int(value: Any, name: str) -> int:
    """A whole number above 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParamError(name, f"must be a whole number above 0, got {value!r}",
                         f"set {name} to a positive integer")
    return value


def positive_number(value: Any, name: str) -> float:
    """A number above 0, whole or not (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ParamError(name, f"must be a number above 0, got {value!r}", f"set {name} to a positive number")
    return value


def integer(value: Any, name: str) -> int:
    """Any whole number, 0 and negative ones included (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(name, f"must be an integer, got {value!r}", f"set {name} to e.g. 42")
    return value


def boolean(fix: str) -> Check:
    """true or false; `fix` says what each does."""
    def check(value, name):
        if not isinstance(value, bool):
            raise ParamError(name, f"must be true or false, got {value!r}", fix)
        return value
    return check


def fraction(example: str) -> Check:
    """A number in [0, 1)."""
    def check(value, name):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ParamError(name, f"must be a fraction in [0, 1), got {value!r}",
                             f"set {name} to e.g. {example}")
        return value
    return check


def one_of(choices: tuple, fix: str | None = None) -> Check:
    """One of `choices`; `fix`, if given, replaces the default fix that lists them."""
    def check(value, name):
        if value not in choices:
            raise ParamError(name, f"unknown value {value!r}",
                             fix or f"use one of {', '.join(map(str, choices))}")
        return value
    return check


def matching(pattern: str, problem: str, fix: str) -> Check:
    """A string matching `pattern` (re.fullmatch); `problem` is formatted with the value's repr."""
    def check(value, name):
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ParamError(name, problem.format(value=repr(value)), fix)
        return value
    return check


def anything(value: Any, name: str) -> Any:
    """Checked where it is used (the module named in the field's meaning)."""
    return value


def key(check: Check, meaning: str) -> Any:
    """A field of a section: its check and its one-line meaning."""
    return field(metadata={"check": check, "meaning": meaning})


def read_section(cls: type[_Section], params: Mapping, name: str) -> _Section:
    """Section `name` of params (a dict of sections) as a `cls`, each key checked in field order."""
    values = params.get(name)
    values = values if isinstance(values, dict) else {}
    return cls(**{f.name: f.metadata["check"](values.get(f.name), f"{name}.{f.name}") for f in fields(cls)})


# --- The sections ------------------------------------------------------------------------------

ALL_THE_REST = "rest"  # split.train: every usable photo of the class that validation and test leave
ENGINES = ("keras", "openvino")
PRECISIONS = ("float32", "bfloat16", "float16", "int8")
CLASS_WEIGHTS = (None, "balanced")
TOP_BLOCK = "top_block"  # finetune.unfreeze: the layers at the conv base's last resolution


def train_count(value: Any, name: str) -> int | str:
    """A whole number above 0, or ALL_THE_REST."""
    if value == ALL_THE_REST:
        return value
    try:
        return positive_int(value, name)
    except ParamError as error:
        raise ParamError(name, f"must be a whole number above 0 or {ALL_THE_REST!r}, got {value!r}",
                         f"set it to a count per class, or to {ALL_THE_REST}: every usable photo that "
                         "validation and test leave") from error


def class_list(value: Any, name: str) -> list[str] | None:
    """None (every class found, sorted), or a list of at least two distinct names."""
    if value is not None and (
            not isinstance(value, list) or len(value) < 2
            or not all(isinstance(item, str) and item and "/" not in item for item in value)
            or len({item.lower() for item in value}) < len(value)):
        raise ParamError(name, f"must be null or a list of two or more different class names, got {value!r}",
                         "set it to null (every class found) or to e.g. [cat, dog]: folder names, or the "
                         "<class> of <class>.<n>.jpg")
    return value


def layers_to_unfreeze(value: Any, name: str) -> int | str:
    """A layer name (TOP_BLOCK included), or a number of layers above 0."""
    valid = isinstance(value, int) and value > 0 or isinstance(value, str) and value
    if isinstance(value, bool) or not valid:
        raise ParamError(name, f"must be a layer name or a number of layers, got {value!r}",
                         f"set finetune.unfreeze to {TOP_BLOCK}, a layer name (e.g. block5_conv1 of "
                         "VGG16), or a number of layers (e.g. 4: the last 4)")
    return value


@dataclass(frozen=True)
class Download:
    url: str = key(matching(r"https?://[^/\s]+.*", "{value} is not an http(s) address",
                            "give the address of the photos' zip archive"),
                   "the photos' archive, fetched when `split.raw_dir` names `data/download/photos.zip`")
    sha256: str = key(matching(r"[0-9a-fA-F]{64}", "{value} is not a SHA-256 (64 hexadecimal digits)",
                               "give the archive's published SHA-256 (sha256sum prints it)"),
                      "its SHA-256, checked before the archive is used")


@dataclass(frozen=True)
class Split:
    raw_dir: str = key(anything, "the photos: the download, or a folder or `.zip` of your own (splitting)")
    classes: list | None = key(class_list, "`null`: every class found, sorted; or a list, in label order")
    train: int | str = key(train_count, "photos per class in train; `rest`: all that the others leave")
    validation: int = key(positive_int, "photos per class in validation")
    test: int = key(positive_int, "photos per class in test")
    seed: int = key(integer, "keys the hash of each photo's bytes that orders its class (splitting.select)")

    @property
    def counts(self) -> dict:
        """Photos per class in each subset, by subset name (train may be ALL_THE_REST)."""
        return {"train": self.train, "validation": self.validation, "test": self.test}


@dataclass(frozen=True)
class ConvBase:
    name: str = key(anything, "any `keras.applications` constructor (conv_base.conv_base_module)")
    weights: str | None = key(anything, "`imagenet`, a local weights file in `weights/`, or `null` (random)")
    input_size: int = key(positive_int, "images are resized (bilinear) to this square")
    seed: int = key(integer, "the initialisation's seed, with `weights: null`")

    @property
    def local_weights(self) -> str | None:
        """`weights` when it names a local file (not imagenet, not null), else None."""
        return None if self.weights in (None, "imagenet") else str(self.weights)


@dataclass(frozen=True)
class Extract:
    """Which engine runs the conv base, in which precision:

        precision   keras                          openvino
        float32     yes                            yes (converted from the Keras conv base)
        bfloat16    mixed_bfloat16 dtype policy    bf16 inference precision (AVX-512 BF16 or AMX CPUs)
        float16     mixed_float16 (for GPUs)       -
        int8        -                              the conv base quantised by the quantize stage
    """

    engine: str = key(one_of(ENGINES), "`keras` (TensorFlow: CPUs, GPUs) or `openvino` (CPUs)")
    precision: str = key(one_of(PRECISIONS), "`float32`, `bfloat16`, `float16` (keras) or `int8` (openvino)")
    batch_size: int = key(positive_int, "images per conv-base call")

    def __post_init__(self):
        if self.engine == "keras" and self.precision == "int8":
            raise ParamError("extract.precision", "int8 runs on the OpenVINO engine only",
                             "set extract.engine: openvino, or a float precision such as float32")
        if self.engine == "openvino" and self.precision == "float16":
            raise ParamError("extract.precision", "float16 is the Keras engine's setting for GPUs; OpenVINO "
                             "runs float32, bfloat16 or int8 on the CPU",
                             "set extract.precision: bfloat16 (or extract.engine: keras on a GPU)")

    @property
    def quantized(self) -> bool:
        """Whether extract runs the int8 conv base that the quantize stage writes."""
        return (self.engine, self.precision) == ("openvino", "int8")


@dataclass(frozen=True)
class Quantize:
    images: int = key(positive_int, "photos of data/split (the lowest SHA-256s) that calibrate int8")


@dataclass(frozen=True)
class Train:
    units: int = key(positive_int, "the head's Dense(units, relu)")
    dropout: float = key(fraction("0.5"), "the Dropout rate after it")
    learning_rate: float = key(positive_number, "RMSprop's learning rate")
    epochs: int = key(positive_int, "epochs over the train features")
    batch_size: int = key(positive_int, "features per step")
    seed: int = key(integer, "weights, dropout and the rows' order each epoch")
    class_weight: str | None = key(one_of(CLASS_WEIGHTS, "use null (every photo counts the same) or balanced "
                                          "(each class counts the same)"),
                                   "`null`; `balanced`: each class weighs the same in the loss")


@dataclass(frozen=True)
class Finetune:
    enabled: bool = key(boolean("set it to true to train augment and finetune in `dvc repro`, false to "
                                "skip them"), "`true`: `dvc repro` trains augment and finetune too")
    batch_size: int = key(positive_int, "images per step")
    seed: int = key(integer, "weights, augmentation and the images' order")
    rotation: float = key(fraction("0.1 (0: none)"), "augmentation: a fraction of a full turn either way")
    zoom: float = key(fraction("0.1 (0: none)"), "a fraction of the size, in or out")
    shift: float = key(fraction("0.1 (0: none)"), "a fraction of the height and of the width")
    head_epochs: int = key(positive_int, "augment: epochs of the head on the frozen conv base")
    head_learning_rate: float = key(positive_number, "augment: its learning rate")
    unfreeze: int | str = key(layers_to_unfreeze, f"finetune: `{TOP_BLOCK}`, a layer name and those above "
                                                  "it, or the last N layers")
    epochs: int = key(positive_int, "finetune: epochs")
    learning_rate: float = key(positive_number, "finetune: its learning rate")


class Section(Generic[_Section]):
    """A section of Params, declared by its class: read and checked the first time it is used, then
    kept (the attribute's name is the section's name in params.yaml)."""

    def __init__(self, cls: type[_Section]):
        self.cls = cls

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, params: "Params", owner: type) -> _Section:
        section = read_section(self.cls, params.values, self.name)
        params.__dict__[self.name] = section  # a non-data descriptor: the instance's copy wins from now on
        return section


class Params:
    """params.yaml as typed sections, each read and checked the first time it is used.

    Reading a section checks all its keys, those the reading stage does not use included; the
    check stage reads every section first, so no later stage meets a bad value.
    """

    download = Section(Download)
    split = Section(Split)
    conv_base = Section(ConvBase)
    extract = Section(Extract)
    quantize = Section(Quantize)
    train = Section(Train)
    finetune = Section(Finetune)

    def __init__(self, values: Mapping):
        self.values = values  # the dict of sections, as YAML gives it

    @classmethod
    def of(cls, params: "Params | Mapping") -> "Params":
        """`params` as Params: library functions take either, so a notebook can pass a dict."""
        return params if isinstance(params, Params) else cls(params)


SECTIONS = {name: section.cls for name, section in vars(Params).items() if isinstance(section, Section)}


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read params.yaml as DVC reads it (YAML 1.2), its sections checked as they are used.

    `dvc exp run -S train.learning_rate=1e-5` writes `1e-05`, a float in YAML 1.2 but a string in
    the YAML 1.1 that PyYAML reads.
    """
    with open(path) as f:
        return Params(YAML(typ="safe", pure=True).load(f) or {})
