"""End to end: `dvc repro` of the real dvc.yaml, stages/ and dogs_vs_cats/ in a throw-away git + DVC project.

One project (module scope) is built and reproduced once, then changed step by step; each test
leaves it reproduced. Select these tests with `-m e2e`, skip them with `-m "not e2e"`.
"""

import json
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import (
    REPO,
    TEST_PARAMS,
    copy_project,
    dvc,
    make_raw,
    merged,
    needs_ray,
    repro,
    run,
    subprocess_env,
    update_params,
)

pytestmark = pytest.mark.e2e

UPSTREAM = {"split", "quantize", "extract@train", "extract@validation", "extract@test"}


# Outputs that must come out byte for byte the same from the same params and data.
DETERMINISTIC = ["metrics.json", "data/features/train/features.npy", "data/features/test/features.npy",
                 "plots/accuracy.png", "plots/loss.png", "plots/heatmaps.jpg", "eval/label_issues.json",
                 "eval/label_quality.json", "plots/label_issues.jpg"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A git + DVC project with the repository's pipeline on 9 tiny images per class, reproduced.

    Returns (project, stages the first repro ran, bytes of the DETERMINISTIC outputs it wrote).
    """
    project = copy_project(tmp_path_factory.mktemp("pipeline"))
    make_raw(project / "data/raw", 9)
    update_params(project, TEST_PARAMS)  # the repository's params.yaml, made small and offline
    run(project, "git", "init", "-q")
    dvc(project, "init", "-q")
    shutil.copy(REPO / ".dvc/config", project / ".dvc/config")  # the repository's cache link type
    run(project, "git", "add", "-A")
    # DVCLive wants a commit; the identity comes from GIT_* variables (helpers.GIT_ENV).
    run(project, "git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "pipeline under test")
    ran = repro(project)
    return project, ran, {name: (project / name).read_bytes() for name in DETERMINISTIC}


def test_first_repro_runs_every_stage_and_writes_every_output(pipeline):
    project, ran, _ = pipeline
    assert UPSTREAM | {"train", "plots"} <= set(ran)
    assert ran.index("split") < ran.index("extract@train") < ran.index("train") < ran.index("plots")

    for subset, count in (("train", 3), ("validation", 2), ("test", 2)):
        for class_name in ("cat", "dog"):
            assert len(list((project / "data/split" / subset / class_name).iterdir())) == count
        features = np.load(project / "data/features" / subset / "features.npy")
        labels = np.load(project / "data/features" / subset / "labels.npy")
        files = (project / "data/features" / subset / "files.txt").read_text().splitlines()
        assert features.shape == (2 * count, 1, 1, 512)  # VGG16 at 32x32
        assert len(labels) == len(files) == 2 * count
    report = json.loads((project / "data/split/report.json").read_text())
    assert report["usable"] == {"cat": 9, "dog": 9}

    head = keras.models.load_model(project / "models/head.keras")
    assert head.input_shape == (None, 1, 1, 512) and head.output_shape == (None, 1)
    classifier = keras.models.load_model(project / "models/classifier.keras")
    assert classifier.input_shape == (None, None, None, 3)
    assert classifier.output["probabilities"].shape == (None, 1)
    metrics = json.loads((project / "metrics.json").read_text())
    for subset in ("train", "validation", "test"):
        assert {"loss", "accuracy"} <= set(metrics[subset])
    predictions = json.loads((project / "eval/predictions.json").read_text())
    test_files = (project / "data/features/test/files.txt").read_text().splitlines()
    assert [row["file"] for row in predictions] == [f"data/split/{name}" for name in test_files]
    confusion = metrics["test"]["confusion"]
    assert sum(confusion.values()) == len(predictions) == 4

    for split_name in ("train", "eval"):
        for metric in ("loss", "accuracy"):
            tsv = project / "dvclive/plots/metrics" / split_name / f"{metric}.tsv"
            assert len(tsv.read_text().splitlines()) == 1 + TEST_PARAMS["train"]["epochs"]
    for name in ("accuracy", "loss"):
        with Image.open(project / "plots" / f"{name}.png") as image:
            assert image.format == "PNG" and image.width > 100
    assert ran.index("train") < ran.index("heatmaps")
    assert ran.index("extract@test") < ran.index("label_issues")
    with Image.open(project / "plots/heatmaps.jpg") as image:  # 4 test photos: mistakes or doubts
        assert image.format == "JPEG" and image.width > 300
    assert (project / "finetune/finetuned/heatmaps/off.txt").is_file()  # no fine-tuned model to draw
    quality = json.loads((project / "eval/label_quality.json").read_text())
    issues = json.loads((project / "eval/label_issues.json").read_text())
    assert quality["photos"] == 14 and quality["label_issues"] == len(issues)
    assert all(row["given"] != row["suggested"] and row["file"].startswith("data/split/") for row in issues)

    # Every stage ran, the switched-off augment and finetune and the download with nothing to fetch too.
    assert {"download", "augment", "finetune"} <= set(ran)
    assert "Data and pipelines are up to date" in dvc(project, "status")


def test_learning_rate_change_reruns_train_and_plots_only(pipeline):
    project, _, _ = pipeline
    update_params(project, {"train": {"learning_rate": 5.0e-4}})
    ran = repro(project)
    assert "train" in ran and "plots" in ran and "heatmaps" in ran
    assert "label_issues" not in ran, "the label issues never read the trained head"
    assert not UPSTREAM & set(ran), f"features must not be recomputed for a head parameter: {ran}"
    assert "check" in ran and "check_model" not in ran  # no TensorFlow start-up to check a head parameter


@contextmanager
def edited(module):
    """`module` with a comment added, which changes its hash and nothing else; restored afterwards."""
    original = module.read_text()
    module.write_text(original + "\n# an edit that changes nothing\n")
    try:
        yield
    finally:
        module.write_text(original)


def test_conv_base_module_change_reruns_extract_and_train_only(pipeline):
    """Each stage depends on the modules it imports: the conv base is none of split's or plots' business."""
    project, _, _ = pipeline
    with edited(project / "dogs_vs_cats/conv_base.py"):
        ran = repro(project)
    assert {"extract@train", "extract@validation", "extract@test", "train"} <= set(ran)
    # Same features and head, so the plots' inputs are unchanged.
    assert "split" not in ran and "plots" not in ran, ran
    repro(project)  # back to the committed module


def test_bytecode_caches_are_not_part_of_the_code_deps(pipeline):
    """Bytecode comes and goes (a fresh clone has none; running the code may write it): without
    .dvcignore's patterns, each would change the hash of dogs_vs_cats/core and rerun every stage."""
    project, _, _ = pipeline
    run(project, sys.executable, "-m", "compileall", "-q", "dogs_vs_cats", "stages")
    assert (project / "dogs_vs_cats/core/__pycache__").is_dir()
    assert "up to date" in dvc(project, "status")
    for cache in project.rglob("__pycache__"):
        shutil.rmtree(cache)
    assert "up to date" in dvc(project, "status")


def test_a_core_module_change_makes_every_stage_out_of_date(pipeline):
    """dogs_vs_cats/core is one folder dep of every stage (dvc status: no need to rerun them all)."""
    project, _, _ = pipeline
    with edited(project / "dogs_vs_cats/core/classes.py"):
        changed = json.loads(dvc(project, "status", "--json"))
    assert {"check", "split", "quantize", "extract@train", "train", "plots"} <= set(changed), changed
    assert "up to date" in dvc(project, "status")


@pytest.mark.parametrize("edit", [
    lambda text: text.replace("learning_rate:", "learnig_rate:"),  # the key renamed
    lambda text: text.replace("  learning_rate:", "  learnig_rate: 0.1\n  learning_rate:"),  # a copy too
])
def test_a_misspelt_parameter_stops_before_dvc_removes_anything(pipeline, edit):
    """The last run's metrics and models stay when a parameter name is wrong."""
    project, _, _ = pipeline
    params_file = project / "params.yaml"
    original = params_file.read_text()
    kept = {name: (project / name).read_bytes() for name in ("metrics.json", "models/head.keras")}
    params_file.write_text(edit(original))
    try:
        result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=subprocess_env(),
                                text=True, capture_output=True)
    finally:
        params_file.write_text(original)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ("train.learnig_rate: no stage reads this parameter. "
            "Fix: did you mean train.learning_rate?") in output
    assert "Running stage 'split'" not in output and "Running stage 'train'" not in output
    for name, data in kept.items():
        assert (project / name).read_bytes() == data, f"{name} was lost to a failed run"
    assert repro(project) in ([], ["check"])  # only check's constant stamp to rewrite


def test_split_test_change_reruns_split_and_test_features_only(pipeline):
    project, _, _ = pipeline
    train_files = (project / "data/features/train/files.txt").read_text()
    update_params(project, {"split": {"test": 3}})
    ran = repro(project)
    assert "split" in ran and "extract@test" in ran and "train" in ran
    assert "extract@train" not in ran and "extract@validation" not in ran, ran
    assert (project / "data/features/train/files.txt").read_text() == train_files
    assert np.load(project / "data/features/test/features.npy").shape == (6, 1, 1, 512)


def split_files(project):
    """Every file under data/split/ but the report, and its bytes."""
    files = sorted((project / "data/split").rglob("*"))
    return {path.relative_to(project): path.read_bytes() for path in files
            if path.is_file() and path.name != "report.json"}


def test_a_split_that_fails_under_dvc_repro_keeps_the_previous_split(pipeline):
    """DVC removes a stage's outputs before running it unless they persist: a raw folder that split
    refuses (one stray bird.1.jpg among the cats and dogs) leaves the last good split in place."""
    project, _, _ = pipeline
    before = split_files(project)
    stray = project / "data/raw/bird.1.jpg"
    shutil.copy(next((project / "data/raw").glob("cat.*.jpg")), stray)
    try:
        result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=subprocess_env(),
                                text=True, capture_output=True)
        output = result.stdout + result.stderr
        assert result.returncode != 0 and "bird is 1 file named bird.* there" in output, output
        assert split_files(project) == before
        assert "split" in dvc(project, "status")  # truthful: its input changed, its outputs did not
    finally:
        stray.unlink()
    repro(project)
    assert split_files(project) == before
    assert "Data and pipelines are up to date" in dvc(project, "status")


def computed_by_extract(output):
    """How many photos the extract stages of a `dvc repro` output say they computed, all together."""
    counts = re.findall(r"\w+: computed (\d+), took \d+ from the feature store", output)
    return sum(int(count) for count in counts)


def test_added_photos_and_a_new_seed_extract_only_what_the_store_lacks(pipeline):
    """Photo by photo: new photos are the only ones computed and move an old test photo only to make
    room for one of them; a new split.seed computes none; back as it was, the fixture's bytes."""
    project, _, first = pipeline
    update_params(project, {"split": {"train": "rest"}})  # every photo in a subset
    repro(project)
    repro(project, "-f", "-s", "extract@train", "extract@validation", "extract@test")  # this test's store
    test_before = {path.name for path in (project / "data/split/test").glob("*/*")}
    added = make_raw(project / "data/raw", 2, start=10)  # two more photos of each class
    output = dvc(project, "repro")
    assert computed_by_extract(output) == len(added)
    names = {path.name for path in added}
    test_after = {path.name for path in (project / "data/split/test").glob("*/*")}
    assert len(test_before - test_after) == len(test_after & names)

    update_params(project, {"split": {"seed": 7}})
    output = dvc(project, "repro")
    assert re.findall(r"Running stage '(extract@\w+)'", output) and computed_by_extract(output) == 0

    for path in added:
        path.unlink()
    update_params(project, {"split": TEST_PARAMS["split"], "train": TEST_PARAMS["train"]})  # as first run
    assert computed_by_extract(dvc(project, "repro")) == 0
    for name in DETERMINISTIC:
        assert (project / name).read_bytes() == first[name], name


def test_int8_on_openvino_quantises_once_and_keeps_it(pipeline):
    """The quantize stage writes the int8 conv base that every extract reads; a new split.test keeps
    it, and so reruns no other extract."""
    project, _, _ = pipeline
    update_params(project, {"extract": {"engine": "openvino", "precision": "int8"}})
    ran = repro(project)
    assert {"quantize", "extract@train", "extract@validation", "extract@test", "train"} <= set(ran), ran
    assert "split" not in ran
    assert {path.name for path in (project / "models/conv_base_int8").iterdir()} == {
        "conv_base.xml", "conv_base.bin", "calibration.json"}
    test_count = len((project / "data/features/test/files.txt").read_text().splitlines())
    assert np.load(project / "data/features/test/features.npy").shape == (test_count, 1, 1, 512)
    assert {"loss", "accuracy", "roc_auc"} <= set(json.loads((project / "metrics.json").read_text())["test"])

    update_params(project, {"split": {"test": test_count // 2 + 1}})
    ran = repro(project)
    assert "extract@test" in ran
    assert not {"extract@train", "extract@validation"} & set(ran), ran

    # Back to float32: quantize writes its note, and bfloat16 then reruns extract but not through it.
    update_params(project, {"split": TEST_PARAMS["split"], "extract": {"precision": "float32"}})
    assert "quantize" in repro(project)
    note = (project / "models/conv_base_int8/not_used.txt").read_bytes()
    update_params(project, {"extract": {"precision": "bfloat16"}})
    ran = repro(project)
    assert "extract@train" in ran and (project / "models/conv_base_int8/not_used.txt").read_bytes() == note
    update_params(project, {"extract": TEST_PARAMS["extract"]})
    repro(project)


def test_forced_repro_is_byte_identical(pipeline):
    """Two full runs on the same params and images write the same bytes.

    The first full run is the fixture's `dvc repro` of the fresh project; after the changes of the
    tests above are undone, `dvc repro -f` runs every stage again (one full run fewer than two
    forced repros, which matters on two cores).
    """
    project, _, first = pipeline
    update_params(project, {"split": TEST_PARAMS["split"], "train": TEST_PARAMS["train"]})
    ran = repro(project, "-f")
    assert UPSTREAM | {"train", "plots"} <= set(ran)
    for name in DETERMINISTIC:
        assert (project / name).read_bytes() == first[name], f"{name} differs between two full runs"


def test_another_conv_base_runs_end_to_end(pipeline):
    """conv_base.name takes any keras.applications model; the head and the export adapt to it."""
    project, _, _ = pipeline
    update_params(project, {"conv_base": {"name": "mobilenet_v2"}})
    ran = repro(project)
    assert {"check_model", "extract@train", "extract@validation", "extract@test", "train"} <= set(ran)
    assert "split" not in ran
    assert np.load(project / "data/features/train/features.npy").shape == (6, 1, 1, 1280)
    assert {"loss", "accuracy", "roc_auc"} <= set(json.loads((project / "metrics.json").read_text())["test"])

    # The exported classifier takes raw images: one line per test image on stdout.
    lines = run(project, sys.executable, "predict.py", "data/split/test").splitlines()
    assert len(lines) == 4, lines
    assert all(re.fullmatch(r"\S+\t(cat|dog)\t[01]\.\d{4}", line) for line in lines), lines


def test_replacing_a_local_weights_file_reruns_extract(pipeline):
    """A weights file in weights/ is a dependency: new weights under the same name, new features."""
    project, _, _ = pipeline
    weights = project / "weights" / "vgg16.weights.h5"

    def write_weights(seed):
        keras.utils.set_random_seed(seed)
        conv_base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
        conv_base.save_weights(weights)

    write_weights(1)
    update_params(project, {"conv_base": {"name": "vgg16", "weights": "weights/vgg16.weights.h5"}})
    repro(project)
    before = (project / "data/features/train/features.npy").read_bytes()
    write_weights(2)
    ran = repro(project)
    assert {"extract@train", "extract@validation", "extract@test", "train"} <= set(ran), ran
    assert (project / "data/features/train/features.npy").read_bytes() != before
    update_params(project, {"conv_base": {"weights": None}})
    weights.unlink()
    repro(project)


@needs_ray
def test_extract_on_ray_writes_the_same_features_so_dvc_reruns_nothing(pipeline):
    """Where extract runs is an environment variable: dvc.lock, and so dvc status, cannot tell."""
    project, _, _ = pipeline
    lock = (project / "dvc.lock").read_bytes()
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "-s", "extract@train"], cwd=project,
                            env=dict(subprocess_env(), EXTRACT_RUNNER="ray"), text=True, capture_output=True,
                            timeout=300)
    assert result.returncode == 0 and "on Ray: 2 actors" in result.stdout, result.stdout + result.stderr
    assert (project / "dvc.lock").read_bytes() == lock
    assert "Data and pipelines are up to date" in dvc(project, "status")
    assert repro(project) == []


def test_a_failed_run_leaves_nothing_for_git_to_add(tmp_path):
    """split completes, extract fails: `git add -A` must not pick up the split images."""
    project = copy_project(tmp_path / "project")
    make_raw(project / "data/raw", 9)
    (project / "weights/broken.weights.h5").write_bytes(b"not a weights file")  # check: it exists
    update_params(project, merged(TEST_PARAMS, {"conv_base": {"weights": "weights/broken.weights.h5"}}))
    run(project, "git", "init", "-q")
    dvc(project, "init", "-q")
    result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=subprocess_env(),
                            text=True, capture_output=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "conv_base.weights: weights/broken.weights.h5 does not load" in output
    assert len(list((project / "data/split/train").rglob("*.jpg"))) == 6
    run(project, "git", "add", "-A")
    added = run(project, "git", "diff", "--cached", "--name-only").splitlines()
    assert added and not [name for name in added
                          if name.endswith((".jpg", ".npy", ".keras")) or name.startswith("data/raw")], added


def test_a_missing_raw_folder_is_reported_by_its_parameter(tmp_path):
    """Before any data is there, the first error names split.raw_dir, not DVC's missing path."""
    project = copy_project(tmp_path / "project")
    update_params(project, TEST_PARAMS)
    run(project, "git", "init", "-q")
    dvc(project, "init", "-q")
    result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=subprocess_env(),
                            text=True, capture_output=True)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "error: params.yaml split.raw_dir: no folder or .zip archive at 'data/raw'" in output
    assert "No such file or directory" not in output


def test_a_collaborator_pulls_the_results_from_a_remote(pipeline, tmp_path):
    """dvc push to a local-folder remote; git clone + dvc pull gets everything, nothing reruns."""
    project, _, _ = pipeline
    remote, clone = tmp_path / "remote", tmp_path / "clone"
    dvc(project, "add", "-q", "data/raw")  # the raw images too, so that the clone has every input
    dvc(project, "remote", "add", "-d", "storage", str(remote))
    dvc(project, "push", "-q")
    run(project, "git", "add", "-A")
    run(project, "git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "results")

    run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    assert not (clone / "models/classifier.keras").exists()
    dvc(clone, "pull", "-q")
    assert "Data and pipelines are up to date" in dvc(clone, "status")
    assert repro(clone) == []
    for name in ("models/classifier.keras", "data/features/test/features.npy"):
        assert (clone / name).read_bytes() == (project / name).read_bytes(), name
    lines = run(clone, sys.executable, "predict.py", "data/split/test").splitlines()
    assert len(lines) == 4
