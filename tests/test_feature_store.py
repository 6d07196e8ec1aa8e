"""dogs_vs_cats/feature_store.py and the extract stage over it: each photo computed once, by content;
safe as a cache (concurrent writers, a corrupt entry, an interrupted write); never a different result."""

import dataclasses
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dogs_vs_cats.conv_base import build_conv_base
from dogs_vs_cats.core.layout import FEATURES_DIR, SUBSETS
from dogs_vs_cats.core.params import ConvBase, Extract
from dogs_vs_cats.engines import keras_engine, openvino_engine, openvino_model, quantize, run_batches
from dogs_vs_cats.feature_store import STORE_VARIABLE, FeatureStore, conv_base_identity, conv_base_key
from helpers import REPO, TEST_PARAMS, copy_project, make_raw, subprocess_env, update_params, write_params
from stages import extract, split

CONV = ConvBase(**TEST_PARAMS["conv_base"])
EXTRACT = Extract(**TEST_PARAMS["extract"])


def digest(i):
    return f"{i:064x}"


def features(i):
    return np.random.default_rng(i).standard_normal((1, 1, 8)).astype(np.float32)


def test_an_entry_reads_back_as_written_and_rows_keep_the_order(feature_store):
    store = FeatureStore({"name": "test"})
    for i in range(5):
        store.put(digest(i), features(i))
    assert store.folder.parent == feature_store and (store.folder / "conv_base.json").is_file()
    assert np.array_equal(store.get(digest(3)), features(3)) and store.get(digest(9)) is None
    assert store.missing([digest(1), digest(9), digest(2)]) == [1]
    rows = np.concatenate(list(store.rows([digest(4), digest(0), digest(2)], batch_size=2)))
    assert np.array_equal(rows, np.stack([features(4), features(0), features(2)]))


def test_computed_rows_are_kept_as_they_pass_and_never_read_back(monkeypatch):
    store = FeatureStore({"name": "test"})
    for i in (1, 3):
        store.put(digest(i), features(i))
    photos = [digest(i) for i in range(5)]
    computed = iter([np.stack([features(0), features(2)]), np.stack([features(4)])])  # batches of 2
    read = []
    get = store.get
    monkeypatch.setattr(store, "get", lambda photo: read.append(photo) or get(photo))
    rows = store.rows(photos, [0, 2, 4], computed, batch_size=2)
    assert np.array_equal(next(rows), np.stack([features(0), features(1)]))
    # Interrupted here: what was computed so far is kept, the rest is not.
    assert get(digest(0)) is not None and get(digest(2)) is None
    assert np.array_equal(np.concatenate([*rows]), np.stack([features(i) for i in (2, 3, 4)]))
    assert read == [digest(1), digest(3)]  # only the entries the store held already
    assert all(np.array_equal(get(digest(i)), features(i)) for i in range(5))


@pytest.mark.parametrize("given", [1, 3])
def test_rows_refuse_another_number_of_computed_photos_than_missing(given):
    store = FeatureStore({"name": "test"})
    computed = [np.stack([features(i) for i in range(given)])]
    with pytest.raises(RuntimeError, match=f"computed {'fewer' if given < 2 else 'more'} images"):
        list(store.rows([digest(0), digest(1)], [0, 1], computed))


def test_an_entry_of_the_earlier_format_counts_as_missing():
    """Entries began with a BLAKE2b digest, now a CRC-32: such an entry is computed again."""
    import hashlib
    import io

    store = FeatureStore({"name": "test"})
    buffer = io.BytesIO()
    np.save(buffer, features(1))
    payload = buffer.getvalue()
    store.path(digest(1)).parent.mkdir(parents=True)
    store.path(digest(1)).write_bytes(hashlib.blake2b(payload, digest_size=32).digest() + payload)
    assert store.get(digest(1)) is None and store.missing([digest(1)]) == [0]


@pytest.mark.parametrize("damage", ["a flipped bit", "truncated", "empty"])
def test_an_entry_that_fails_its_check_is_never_used(damage):
    store = FeatureStore({"name": "test"})
    store.put(digest(1), features(1))
    path = store.path(digest(1))
    data = bytearray(path.read_bytes())
    if damage == "a flipped bit":
        data[-5] ^= 0x10  # in the features themselves: still a well-formed .npy
    path.write_bytes(data[:len(data) // 2] if damage == "truncated" else b"" if damage == "empty" else data)
    assert store.get(digest(1)) is None and store.missing([digest(1)]) == [0]
    store.put(digest(1), features(1))  # computed again, it replaces the bad entry
    assert np.array_equal(store.get(digest(1)), features(1))


def test_an_interrupted_write_leaves_no_entry(monkeypatch):
    store = FeatureStore({"name": "test"})
    store.put(digest(0), features(0))  # the folder exists

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put(digest(1), features(1))
    monkeypatch.undo()
    assert store.get(digest(1)) is None
    assert sorted(path.name for path in store.folder.rglob("*") if path.is_file()) == sorted(
        ["conv_base.json", f"{digest(0)}.npy"])  # nor its temporary
    # What a killed writer leaves, its temporary, is never taken for an entry.
    store.path(digest(2)).parent.mkdir(exist_ok=True)
    (store.path(digest(2)).parent / f".tmp-0-{digest(2)}.npy").write_bytes(store.path(digest(0)).read_bytes())
    assert store.get(digest(2)) is None


# One writer of test_concurrent_writers_never_corrupt_an_entry: a Python of its own that imports the
# store alone (no TensorFlow). It writes its own entries and, for odd i, those all writers share,
# and reads a shared one back after each write: once an entry has read back sound, it must always
# read back sound and the same, however the others rewrite it (what extract's two passes rely on).
WRITER = """
import sys
from pathlib import Path
import numpy as np
from dogs_vs_cats.feature_store import FeatureStore
store, writer = FeatureStore({"name": "test"}, Path(sys.argv[1])), int(sys.argv[2])
features = [np.random.default_rng(i).standard_normal((1, 1, 8)).astype(np.float32) for i in range(60)]
seen = set()
for _ in range(50):  # long enough for the writers to overlap
    for i in range(60):
        store.put(f"{i if i % 2 else 1000 * writer + i:064x}", features[i])
        shared = (i + 2 * writer) % 60 | 1
        read = store.get(f"{shared:064x}")
        assert read is not None or shared not in seen, f"entry {shared} read back sound, then not"
        assert read is None or np.array_equal(read, features[shared])
        if read is not None:
            seen.add(shared)
"""


def test_concurrent_writers_never_corrupt_an_entry(feature_store):
    env = dict(subprocess_env(), PYTHONPATH=str(REPO))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(feature_store), str(n)], env=env,
                                stderr=subprocess.PIPE, text=True) for n in range(4)]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    store = FeatureStore({"name": "test"}, feature_store)
    for i in range(60):
        for key in [digest(i)] if i % 2 else [digest(1000 * n + i) for n in range(4)]:
            assert np.array_equal(store.get(key), features(i)), key
    assert not [path for path in store.folder.rglob(".tmp-*")]


def test_the_key_holds_what_changes_features_and_nothing_else(project):
    (project / "weights").mkdir()
    weights = project / "weights/base.weights.h5"
    weights.write_bytes(b"one")
    local = dataclasses.replace(CONV, weights="weights/base.weights.h5")

    def key(conv=CONV, extract_=EXTRACT):
        return conv_base_key(conv_base_identity(conv, extract_))

    assert key() == key(extract_=dataclasses.replace(EXTRACT, batch_size=99))  # not a feature's
    assert key() == key(dataclasses.replace(CONV, name="VGG_16"))  # the same constructor
    others = [key(dataclasses.replace(CONV, seed=1)), key(dataclasses.replace(CONV, input_size=64)),
              key(extract_=dataclasses.replace(EXTRACT, precision="bfloat16")),
              key(extract_=dataclasses.replace(EXTRACT, engine="openvino")), key(local)]
    assert len({key(), *others}) == 6
    weights.write_bytes(b"two")  # the weights file's bytes, not its name
    assert key(local) != others[-1]
    assert key(dataclasses.replace(local, seed=5)) == key(local)  # the seed counts with weights: null only


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    """A tiny int8 VGG16 at 32x32 (.xml), calibrated on random images."""
    from dogs_vs_cats.core.runtime import tf
    from dogs_vs_cats.engines import save_openvino

    conv_base, _ = build_conv_base(CONV)
    pixels = np.random.default_rng(0).uniform(-100, 100, (4, 1, 32, 32, 3)).astype(np.float32)
    path = tmp_path_factory.mktemp("int8") / "conv_base.xml"
    save_openvino(quantize(openvino_model(conv_base), tf.data.Dataset.from_tensor_slices(pixels), 4), path)
    return path


@pytest.mark.parametrize("engine, precision", [("keras", "float32"), ("keras", "bfloat16"),
                                               ("openvino", "float32"), ("openvino", "bfloat16"),
                                               ("openvino", "int8")])
def test_an_engine_gives_a_photo_the_same_bytes_in_any_batch(engine, precision, int8_model):
    """What makes the store change no result: a photo's features do not depend on which photos,
    how many, or in which place, share its batch, nor on the batch size OpenVINO compiles for
    (extract.batch_size, not in the key); measured on the CPU this runs on."""
    conv_base, _ = build_conv_base(CONV, "float32" if engine == "openvino" else precision)

    def model():
        return int8_model if precision == "int8" else openvino_model(conv_base)

    if engine == "keras":
        run = keras_engine(conv_base)
    else:
        run, _ = openvino_engine(model(), precision, 6)  # batches of 5 and 1 padded, 12 in two parts
    images = np.random.default_rng(1).uniform(-100, 100, (12, 32, 32, 3)).astype(np.float32)
    reference = run(images)
    order = np.random.default_rng(2).permutation(12)
    shuffled = np.empty_like(reference)
    for start, size in ((0, 5), (5, 1), (6, 6)):
        rows = order[start:start + size]
        shuffled[rows] = run(images[rows])
    assert shuffled.tobytes() == reference.tobytes()
    # And several batches in flight at once, on OpenVINO's streams (what extract runs): in order, the same.
    batches = [images[order[start:start + size]] for start, size in ((0, 5), (5, 1), (6, 6))] * 3
    streamed = np.concatenate(list(run_batches(run, batches)))
    assert streamed.tobytes() == np.concatenate([reference[order]] * 3).tobytes()
    if engine == "openvino":
        compiled_for_4, _ = openvino_engine(model(), precision, 4)
        assert compiled_for_4(images).tobytes() == reference.tobytes()
        # and one batch at a time on every core, as a Ray actor runs it
        latency, _ = openvino_engine(model(), precision, 12, hint="LATENCY")
        assert latency(images).tobytes() == reference.tobytes()


def extract_subset(subset, capsys):
    """Run the extract stage on one subset, in this process; (features.npy's bytes, what it printed)."""
    capsys.readouterr()
    sys.argv = ["extract", subset]
    extract.main()
    return (FEATURES_DIR / subset / "features.npy").read_bytes(), capsys.readouterr().out


def extract_all(capsys):
    """Run the extract stage on every subset: (their features.npy bytes, how many it computed)."""
    results = {subset: extract_subset(subset, capsys) for subset in SUBSETS}
    computed = sum(int(re.search(r": computed (\d+), took", out).group(1)) for _, out in results.values())
    return {subset: data for subset, (data, _) in results.items()}, computed


def test_extract_computes_only_new_photos_and_gives_what_an_empty_store_gives(project, capsys, monkeypatch):
    make_raw(project / "data/raw", 12)
    write_params(project, {"split": {"train": "rest", "validation": 2, "test": 2}})
    split.main()
    assert extract_all(capsys)[1] == 24

    make_raw(project / "data/raw", 3, start=13)  # three more photos of each class
    split.main()
    grown, computed = extract_all(capsys)
    assert computed == 6

    update_params(project, {"split": {"seed": 5}})  # another split: every photo is in the store
    split.main()
    reshuffled, computed = extract_all(capsys)
    assert computed == 0 and reshuffled != grown

    monkeypatch.setenv(STORE_VARIABLE, str(project / "empty store"))
    assert extract_all(capsys) == (reshuffled, 30)  # the same bytes from an empty store
    update_params(project, {"split": {"seed": TEST_PARAMS["split"]["seed"]}})
    split.main()
    assert extract_all(capsys) == (grown, 0)


def test_a_corrupt_entry_is_computed_again_by_extract(project, capsys):
    make_raw(project / "data/raw", 7)
    write_params(project)
    split.main()
    first, _ = extract_subset("validation", capsys)
    store = FeatureStore(conv_base_identity(CONV, EXTRACT))
    entry = next(store.folder.rglob("*.npy"))
    entry.write_bytes(entry.read_bytes()[:-8])
    again, out = extract_subset("validation", capsys)
    assert "validation: computed 1, took 3 from the feature store" in out and again == first


def test_extract_loads_no_tensorflow_when_the_store_holds_every_photo(project, capsys):
    copy_project(project)
    make_raw(project / "data/raw", 7)
    write_params(project)
    split.main()
    first, _ = extract_subset("test", capsys)
    shutil.rmtree(FEATURES_DIR)
    code = ("import runpy, sys; sys.argv = ['extract', 'test']; "
            "runpy.run_module('stages.extract', run_name='__main__'); "
            "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, env=subprocess_env(), text=True,
                            capture_output=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout + result.stderr
    assert "test: computed 0, took 4 from the feature store" in result.stdout
    assert (FEATURES_DIR / "test/features.npy").read_bytes() == first


@pytest.mark.slow
def test_two_extracts_at_once_share_one_store_and_give_an_empty_stores_results(tmp_path):
    """Two projects with other split seeds extract their train photos at once into one empty store,
    as two `dvc exp run --temp` would; each gets what it gets alone from an empty store."""
    projects = []
    for seed in (1, 2):
        project = copy_project(tmp_path / f"seed{seed}")
        make_raw(project / "data/raw", 30)
        update_params(project, dict(TEST_PARAMS, split=dict(TEST_PARAMS["split"], train="rest", seed=seed)))
        subprocess.run([sys.executable, "-m", "stages.split"], cwd=project, env=subprocess_env(), check=True,
                       capture_output=True)
        projects.append(project)

    def extract_train(store):
        env = dict(subprocess_env(), **{STORE_VARIABLE: str(store)})
        return [subprocess.Popen([sys.executable, "-m", "stages.extract", "train"], cwd=project, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for project in projects]

    def finish(processes):
        results = []
        for process, project in zip(processes, projects, strict=True):
            out, _ = process.communicate(timeout=300)
            assert process.returncode == 0, out
            results.append((project / "data/features/train/features.npy").read_bytes())
        return results

    shared = finish(extract_train(tmp_path / "shared store"))  # both at once
    alone = []
    for index, project in enumerate(projects):
        env = dict(subprocess_env(), **{STORE_VARIABLE: str(tmp_path / f"empty store {index}")})
        subprocess.run([sys.executable, "-m", "stages.extract", "train"], cwd=project, env=env, check=True,
                       capture_output=True)
        alone.append((project / "data/features/train/features.npy").read_bytes())
    assert shared == alone
