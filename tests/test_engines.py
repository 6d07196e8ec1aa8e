"""The engines that run the conv base: which combinations exist, and that they agree."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dogs_vs_cats import engines
from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.layout import QUANTIZED_DIR
from dogs_vs_cats.core.params import ConvBase, ParamError, Params
from dogs_vs_cats.engines import keras_engine, load_engine, openvino_engine, openvino_model
from dogs_vs_cats.quantization import calibration_photos
from helpers import TEST_PARAMS, copy_project, make_raw, merged, subprocess_env, update_params, write_params
from stages import quantize, split

SIZE = 32


def engine_params(**extract):
    return merged(TEST_PARAMS, {"extract": extract})


@pytest.mark.parametrize("extract, named, says", [
    ({"engine": "tensorrt"}, "extract.engine", "unknown value 'tensorrt'"),
    ({"engine": "keras", "precision": "int8"}, "extract.precision", "int8 runs on the OpenVINO engine only"),
    ({"engine": "openvino", "precision": "float16"}, "extract.precision", "float16 is the Keras engine's"),
    ({"precision": "float64"}, "extract.precision", "unknown value 'float64'"),
])
def test_combinations_that_cannot_run_name_the_parameter(extract, named, says):
    with pytest.raises(ParamError, match=f"params.yaml {named}: .*{says}"):
        _ = Params(engine_params(**extract)).extract


@pytest.mark.parametrize("engine, precision", [("keras", "float32"), ("keras", "bfloat16"),
                                               ("keras", "float16"), ("openvino", "float32"),
                                               ("openvino", "bfloat16"), ("openvino", "int8")])
def test_combinations_that_can_run_pass(engine, precision):
    extract = Params(engine_params(engine=engine, precision=precision)).extract
    assert (extract.engine, extract.precision) == (engine, precision)


@pytest.fixture(scope="module")
def conv_base_and_images():
    conv_base, preprocess = build_conv_base(ConvBase(**TEST_PARAMS["conv_base"]), "float32")
    pixels = np.random.default_rng(0).uniform(0, 255, (6, SIZE, SIZE, 3)).astype(np.float32)
    return conv_base, np.asarray(preprocess(pixels))


def test_openvino_float32_gives_the_keras_features(conv_base_and_images):
    conv_base, images = conv_base_and_images
    expected = keras_engine(conv_base)(images)
    run, note = openvino_engine(openvino_model(conv_base), "float32", 4)
    features = run(images)  # 6 images: a batch of 4, then 2 padded to 4
    assert note is None and features.dtype == np.float32 and features.shape == expected.shape
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_array_equal(run(images[:2]), features[:2])  # any batch size, same rows
    assert run(images[:0]).shape == (0, *expected.shape[1:])


def test_openvino_map_gives_batches_in_order_and_an_error_after_the_batches_before_it(conv_base_and_images):
    conv_base, images = conv_base_and_images
    run, _ = openvino_engine(openvino_model(conv_base), "float32", 2)
    batches = [images[i:i + 1 + i % 2] for i in range(len(images))]  # of 1 and 2 images
    expected = [run(batch) for batch in batches]
    mapped = list(run.map(iter(batches)))
    assert len(mapped) == len(batches) and all(map(np.array_equal, mapped, expected))

    def failing():
        yield from batches[:4]
        raise ValueError("photo 5 does not decode")

    given = []
    with pytest.raises(ValueError, match="photo 5"):
        given.extend(run.map(failing()))
    assert len(given) == 4 and all(map(np.array_equal, given, expected[:4]))


def test_openvino_map_stops_its_feeder_when_the_caller_stops(conv_base_and_images):
    import threading

    conv_base, images = conv_base_and_images
    run, _ = openvino_engine(openvino_model(conv_base), "float32", 2)
    taken = []

    def endless():
        while True:
            taken.append(1)
            yield images[:2]

    mapped = run.map(endless())
    next(mapped)
    mapped.close()  # the caller stops (an error while writing, Ctrl-C)
    assert not [thread for thread in threading.enumerate() if thread.name == "openvino-feeder"]
    assert len(taken) <= 1 + 2 * run.jobs + 1  # no further than its bound ahead


def test_openvino_bfloat16_runs_close_to_float32_or_says_what_ran(conv_base_and_images):
    conv_base, images = conv_base_and_images
    expected = keras_engine(conv_base)(images)
    run, note = openvino_engine(openvino_model(conv_base), "bfloat16", len(images))
    features = run(images)
    assert note is None or "OpenVINO ran f32 instead" in note
    # bfloat16 keeps 8 bits of mantissa: a few percent of the largest feature at most.
    assert np.abs(features - expected).max() < 0.05 * np.abs(expected).max()


def test_quantize_writes_an_int8_conv_base_that_extract_loads(project):
    """A tiny int8 run: calibrated on photos of data/split, loaded as extract loads it, close to float32."""
    make_raw(project / "data/raw", 7)
    params = merged(TEST_PARAMS, {"extract": {"engine": "openvino", "precision": "int8"},
                                  "quantize": {"images": 4}})
    write_params(project, params)
    split.main()
    quantize.main()
    assert {path.name for path in QUANTIZED_DIR.iterdir()} == {"conv_base.xml", "conv_base.bin",
                                                               "calibration.json"}
    bytes_first = (QUANTIZED_DIR / "conv_base.bin").read_bytes()
    shutil.rmtree(QUANTIZED_DIR)
    quantize.main()
    assert (QUANTIZED_DIR / "conv_base.bin").read_bytes() == bytes_first  # deterministic

    run, preprocess, shape, _ = load_engine(ConvBase(**params["conv_base"]), "openvino", "int8", batch_size=4)
    conv_base, _ = build_conv_base(ConvBase(**params["conv_base"]), "float32")
    pixels = np.random.default_rng(1).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    images = np.asarray(preprocess(pixels))
    features, expected = run(images), keras_engine(conv_base)(images)
    assert features.shape == (4, *shape) == expected.shape
    assert not np.array_equal(features, expected)  # it is not the float32 model
    assert np.corrcoef(features.ravel(), expected.ravel())[0, 1] > 0.9


def test_quantize_writes_only_a_constant_note_when_int8_is_not_used(project):
    make_raw(project / "data/raw", 7)
    write_params(project)
    split.main()
    quantize.main()
    assert [path.name for path in QUANTIZED_DIR.iterdir()] == ["not_used.txt"]
    note = (QUANTIZED_DIR / "not_used.txt").read_bytes()
    write_params(project, {"extract": {"engine": "openvino", "precision": "bfloat16"}})
    quantize.main()
    assert (QUANTIZED_DIR / "not_used.txt").read_bytes() == note


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_quantize_writes_its_note_without_starting_tensorflow(tmp_path, precision):
    """The stage as DVC runs it: with no int8 to make, neither TensorFlow nor Keras is imported."""
    project = copy_project(tmp_path / "project")
    write_params(project, {"extract": {"precision": precision}})
    run_as_dvc_does = ("import runpy, sys; runpy.run_module('stages.quantize', run_name='__main__'); "
                       "print(sorted({name.split('.')[0] for name in sys.modules} & {'tensorflow', "
                       "'keras'}))")
    result = subprocess.run([sys.executable, "-c", run_as_dvc_does], cwd=project, env=subprocess_env(),
                            text=True, capture_output=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout
    assert [path.name for path in (project / QUANTIZED_DIR).iterdir()] == ["not_used.txt"]


def test_int8_without_a_quantized_model_says_how_to_make_it(project):
    with pytest.raises(UserError, match=r"no int8 conv base at .*conv_base\.xml\. Fix: run `dvc repro`"):
        load_engine(TEST_PARAMS["conv_base"], "openvino", "int8", batch_size=32)


def test_calibration_photos_are_the_lowest_digests():
    digests = [f"{i:064x}" for i in (7, 3, 9, 1)]
    assert calibration_photos(digests, 2) == [f"{1:064x}", f"{3:064x}"]
    assert calibration_photos(digests, 9) == sorted(digests)


def test_quantize_keeps_its_model_while_its_calibration_photos_stay(project, capsys):
    """A new split.seed or more photos leave the int8 model as it is (and so every int8 feature in
    the store); a calibration photo removed makes a new one, as from scratch."""
    make_raw(project / "data/raw", 7)
    write_params(project, {"split": {"train": "rest"}, "extract": {"engine": "openvino", "precision": "int8"},
                           "quantize": {"images": 4}})
    split.main()
    quantize.main()
    first = (QUANTIZED_DIR / "conv_base.bin").read_bytes()
    calibration = json.loads((QUANTIZED_DIR / "calibration.json").read_text())["photos"]
    assert len(calibration) == 4
    update_params(project, {"split": {"seed": 9}})
    make_raw(project / "data/raw", 3, start=8)
    split.main()
    capsys.readouterr()
    quantize.main()
    kept = "kept the int8 vgg16: its 4 calibration photos are all still in data/split"
    assert kept in capsys.readouterr().out
    assert (QUANTIZED_DIR / "conv_base.bin").read_bytes() == first

    by_digest = {hashlib.sha256(path.read_bytes()).hexdigest(): path for path in Path("data/raw").iterdir()}
    by_digest[calibration[0]].unlink()
    split.main()
    quantize.main()
    assert "quantising vgg16 to int8, calibrated on 4 photos" in capsys.readouterr().out
    assert calibration[0] not in json.loads((QUANTIZED_DIR / "calibration.json").read_text())["photos"]


def test_keras_engine_says_when_a_precision_does_not_suit_this_machine(monkeypatch):
    monkeypatch.setattr(engines.tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(engines, "cpu_flags", lambda: {"avx2", "fma"})  # an AVX2-only CPU
    assert engines.keras_note("float32") is None
    assert "emulates" in engines.keras_note("bfloat16")
    assert "no GPU" in engines.keras_note("float16")
    monkeypatch.setattr(engines, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert engines.keras_note("bfloat16") is None
