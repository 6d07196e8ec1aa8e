"""The int8 conv base for OpenVINO (the quantize stage): NNCF's post-training quantisation.

The float32 conv base runs over the calibration photos to set the int8 ranges: the
quantize.images photos of data/split with the lowest SHA-256 of their bytes, whatever subset holds
them (calibration reads no label). models/conv_base_int8/calibration.json names them, with what
decided the model; while that is the same and they are all still in data/split, the stage keeps
the model as it is. So neither a split change nor added photos make a new int8 model, which would
make every int8 feature in the feature store stale; removing a calibration photo does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.atomic import atomic_path, json_text
from dogs_vs_cats.core.digest import file_sha256
from dogs_vs_cats.engines import openvino_model, quantize, save_openvino
from dogs_vs_cats.feature_store import code_digest, conv_base_identity
from dogs_vs_cats.images import image_dataset

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dogs_vs_cats.core.params import ConvBase, Extract

MODEL_NAME, CALIBRATION_NAME = "conv_base.xml", "calibration.json"


def calibration_photos(digests: Sequence[str], count: int) -> list[str]:
    """The `count` lowest of the photos' SHA-256s (all of them if there are fewer), in order."""
    return sorted(digests)[:count]


def write_int8_conv_base(conv: ConvBase, extract: Extract, photos: Sequence[Path], count: int,
                         folder: Path) -> None:
    """Quantise the conv base of the conv_base section, calibrated on `count` of `photos`
    (quantize.images); write folder/conv_base.xml (.bin beside it) and folder/calibration.json,
    unless the int8 model there was made the same way from photos that are all still among `photos`.
    """
    by_digest = {file_sha256(path): path for path in photos}
    made_by = {"conv_base": conv_base_identity(conv, extract), "images": count,
               "code": code_digest(("quantization.py",))}
    calibration = folder / CALIBRATION_NAME
    if calibration.is_file() and (folder / MODEL_NAME).is_file():
        previous = json.loads(calibration.read_text())
        enough = len(previous["photos"]) == min(count, len(by_digest))  # as many as from scratch
        if previous["made_by"] == made_by and enough and set(previous["photos"]) <= by_digest.keys():
            print(f"kept the int8 {conv.name}: its {len(previous['photos'])} calibration photos are all "
                  "still in data/split")
            return
    chosen = calibration_photos(list(by_digest), count)
    conv_base, preprocess = build_conv_base(conv, "float32")
    images = image_dataset([by_digest[digest] for digest in chosen], conv.input_size, batch_size=1,
                           preprocess=preprocess)
    print(f"quantising {conv.name} to int8, calibrated on {len(chosen)} photos")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        save_openvino(quantize(openvino_model(conv_base), images, len(chosen)), tmp / MODEL_NAME)
        (tmp / CALIBRATION_NAME).write_text(json_text({"made_by": made_by, "photos": chosen}))
