"""Classes from the data: any number of class folders, split.classes, and the head, metrics, curves
and predictions that follow the class list (two classes: the recipe's sigmoid; more: a softmax)."""

import json
import os

import keras
import numpy as np
import pytest

import predict
from dogs_vs_cats.core.classes import class_probabilities, predicted_labels, reported_probability
from dogs_vs_cats.core.layout import CLASSES_FILE, PRECISION_RECALL_FILE, ROC_FILE, SPLIT_DIR, SPLIT_REPORT
from dogs_vs_cats.core.params import ConvBase, ParamError, Params
from dogs_vs_cats.evaluation import prediction_rows, subset_metrics
from dogs_vs_cats.figures import confidence, write_curves
from dogs_vs_cats.model import build_head, class_weights
from dogs_vs_cats.splitting import HIDDEN, NOT_LISTED, check_split, find_candidates
from helpers import TEST_PARAMS, make_raw, merged, save_image, update_params, write_params
from stages import split

THREE = ["bird", "cat", "dog"]


def found(names, wanted=None):
    """find_candidates as (classes, {name: class or the reason it has none})."""
    classes, candidates = find_candidates(names, wanted)
    return classes, {name: class_name or reason for name, (class_name, reason) in candidates.items()}


# --- Finding the classes ------------------------------------------------------------------------


def test_any_folder_names_any_number_sorted():
    names = ["tulips/1.jpg", "roses/a.png", "daisies/x.jpeg", "roses/more/b.jpg", "notes.txt"]
    classes, candidates = found(names)
    assert classes == ["daisies", "roses", "tulips"]
    assert candidates == {"tulips/1.jpg": "tulips", "roses/a.png": "roses", "daisies/x.jpeg": "daisies",
                          "roses/more/b.jpg": "roses", "notes.txt": "name matches no class"}


def test_a_single_top_folder_and_macos_metadata_are_looked_through():
    names = ["flowers/roses/1.jpg", "flowers/tulips/1.jpg", "__MACOSX/flowers/roses/._1.jpg",
             "flowers/.DS_Store", "LICENSE.txt"]
    classes, candidates = found(names)
    assert classes == ["roses", "tulips"]
    assert candidates["__MACOSX/flowers/roses/._1.jpg"] == HIDDEN == candidates["flowers/.DS_Store"]


def test_class_folders_holding_only_sub_folders():
    classes, _ = found(["roses/2023/1.jpg", "tulips/2024/1.jpg"])
    assert classes == ["roses", "tulips"]


def test_kaggle_s_flat_names_win_over_the_folders_beside_them():
    """Kaggle's dogs-vs-cats/ holds train/ (cat.1.jpg, dog.1.jpg) and test1/ (1.jpg): not two classes."""
    classes, candidates = found(["train/cat.1.jpg", "train/dog.1.jpg", "test1/1.jpg", "test1/2.jpg"])
    assert classes == ["cat", "dog"] and candidates["test1/1.jpg"] == "name matches no class"


def test_split_classes_picks_and_orders_and_reports_the_others():
    names = ["photos/Dog/1.jpg", "photos/Cat/1.jpg", "photos/Bird/1.jpg"]
    classes, candidates = found(names, ["dog", "Cat"])  # class names are lower case, matched so
    assert classes == ["dog", "cat"]
    assert candidates == {"photos/Dog/1.jpg": "dog", "photos/Cat/1.jpg": "cat",
                          "photos/Bird/1.jpg": NOT_LISTED}


def test_class_names_are_lower_case_whatever_the_layout():
    """PetImages' Cat/ and Dog/ are Kaggle's cat and dog: the same metrics, the same label order."""
    assert found(["PetImages/Dog/1.jpg", "PetImages/cat/1.jpg"])[0] == ["cat", "dog"]
    assert found(["Cat.1.jpg", "dog.1.jpg"])[0] == ["cat", "dog"]


def test_the_book_s_train_validation_test_folders_are_taken_together():
    names = [f"{subset}/{kind}/{kind}.{i}.jpg" for subset in ("train", "validation", "test")
             for kind in ("cats", "dogs") for i in (1, 2)]
    classes, candidates = found(names)
    assert classes == ["cats", "dogs"] and set(candidates.values()) == {"cats", "dogs"}


def test_class_folders_with_several_sub_folders_each():
    classes, candidates = found(["roses/2023/1.jpg", "roses/2024/1.jpg", "tulips/2023/1.jpg"])
    assert classes == ["roses", "tulips"] and candidates["roses/2024/1.jpg"] == "roses"


def test_class_folders_in_two_places_with_other_classes_are_refused():
    with pytest.raises(ParamError, match=r"split\.raw_dir: classes in several folders, not the same in "
                                         r"each: top/a/: x, y; top/b/: x, z\. Fix: point split\.raw_dir"):
        found(["top/a/x/1.jpg", "top/a/y/1.jpg", "top/b/x/1.jpg", "top/b/z/1.jpg"], ["x", "y", "z"])


@pytest.mark.parametrize("value", [["cat"], "cat", [], ["cat", "Cat"], ["cat", None], ["a/b", "c"], 3])
def test_a_bad_class_list_names_the_parameter(value):
    with pytest.raises(ParamError, match=r"params\.yaml split\.classes: must be null or a list"):
        check_split(merged(TEST_PARAMS, {"split": {"classes": value, "raw_dir": "data/download/photos.zip"}}))


# --- Bad layouts: one line naming the cause, the previous split kept ------------------------------


@pytest.fixture
def split_before(project):
    """A project whose previous split (of cat and dog) must survive the bad layouts that follow."""
    make_raw(project / "data/raw", 7)
    write_params(project)
    split.main()
    return {path: path.read_bytes() for path in sorted(SPLIT_DIR.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("layout, overrides, message", [
    ({"only/1.jpg": "cat"}, {},
     "split.raw_dir: {raw} has 1 class(es) (only); a classifier needs two or more"),
    ({}, {}, "split.raw_dir: {raw} has 0 class(es) (none found)"),
    ({"Cat/1.jpg": "cat", "cat/2.jpg": "cat", "dog/1.jpg": "dog"}, {},
     "split.raw_dir: classes 'Cat' and 'cat' differ only by case"),
    ({"cat/1.jpg": "cat", "dog/1.jpg": "dog"}, {"classes": ["cat", "bird"]},
     "split.classes: bird not found in {raw} (its classes: cat, dog)"),
    ({"cat/1.jpg": "cat", "con/1.jpg": "dog"}, {},
     "split.raw_dir: class 'con' in {raw} cannot be a folder name on Windows"),
    ({"cat/1.jpg": "cat", "a:b/1.jpg": "dog"}, {},
     "split.raw_dir: class 'a:b' in {raw} cannot be a folder name on Windows"),
    ({f"{kind}/{i}.jpg": kind for kind in ("cat", "dog") for i in range(7)} | {"bird/1.jpg": "bird"}, {},
     "split.train/validation/test: 7 bird needed (3 + 2 + 2) but {raw} has 1 usable; bird is the "
     "folder bird/ there"),
    # Kaggle's flat layout with one stray photo: its name makes a class; the fix leaves it out.
    ({f"{kind}.{i}.jpg": kind for kind in ("cat", "dog") for i in range(7)} | {"bird.1.jpg": "bird"}, {},
     "has 1 usable; bird is 1 file named bird.* there"),
    ({f"{kind}.{i}.jpg": kind for kind in ("cat", "dog") for i in range(7)} | {"bird.1.jpg": "bird"}, {},
     "Fix: lower the per-class counts or add images; or leave bird out with split.classes: [cat, dog]"),
])
def test_bad_layouts_are_one_line_and_remove_nothing(split_before, project, layout, overrides, message):
    raw = project / "bad"
    raw.mkdir()
    for name, kind in layout.items():
        save_image(raw / name, kind, 1)
    (raw / "readme.txt").write_text("not a photo\n")
    update_params(project, {"split": {"raw_dir": str(raw), **overrides}})
    with pytest.raises(ParamError) as error:
        split.main()
    assert message.format(raw=raw) in str(error.value) and "\n" not in str(error.value)
    after = {path: path.read_bytes() for path in sorted(SPLIT_DIR.rglob("*")) if path.is_file()
             if path != SPLIT_REPORT}  # the report says what the failed run found
    assert after == {path: data for path, data in split_before.items() if path != SPLIT_REPORT}


def test_three_class_folders_split_into_three(project, capsys):
    make_raw(project / "data/raw", 8, "folders", classes=THREE)
    (project / "data/raw/.hidden").mkdir()
    save_image(project / "data/raw/.hidden/1.jpg", "cat", 1)
    write_params(project, {"split": {"train": "rest", "validation": 2, "test": 2}})
    split.main()
    assert json.loads(CLASSES_FILE.read_text()) == THREE
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["classes"] == THREE and report["usable"] == {"bird": 8, "cat": 8, "dog": 8}
    assert report["skipped"] == {HIDDEN: 1}
    assert sorted(p.name for p in (SPLIT_DIR / "train").iterdir()) == THREE
    assert "train: bird 4, cat 4, dog 4" in capsys.readouterr().out


def test_split_classes_fixes_the_label_order(project):
    make_raw(project / "data/raw", 7, "folders", classes=THREE)
    write_params(project, {"split": {"classes": ["dog", "cat"]}})
    split.main()
    assert json.loads(CLASSES_FILE.read_text()) == ["dog", "cat"]
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["skipped"] == {NOT_LISTED: 7}
    assert sorted(p.name for p in (SPLIT_DIR / "test").iterdir()) == ["cat", "dog"]


# --- The head, the metrics, the curves and predict.py follow the classes --------------------------


def test_more_than_two_classes_get_a_softmax_and_sparse_categorical_cross_entropy():
    head = build_head((2, 2, 8), units=8, dropout=0.5, learning_rate=1e-3, classes=THREE)
    assert head.output_shape == (None, 3) and head.layers[-1].activation is keras.activations.softmax
    assert head.loss == "sparse_categorical_crossentropy"
    binary = build_head((2, 2, 8), units=8, dropout=0.5, learning_rate=1e-3, classes=["cat", "dog"])
    assert binary.output_shape == (None, 1) and binary.loss == "binary_crossentropy"


def test_balanced_class_weights_weigh_every_class_the_same():
    labels = np.float32([0] * 6 + [1] * 2 + [2] * 4)
    weights = class_weights(labels, "balanced", 3)
    assert weights == pytest.approx({0: 12 / 18, 1: 12 / 6, 2: 12 / 12})
    assert {label: weights[label] * np.sum(labels == label) for label in weights} == pytest.approx(
        {0: 4, 1: 4, 2: 4})
    assert class_weights(labels, None, 3) is None
    with pytest.raises(ParamError, match=r"train\.class_weight: unknown value 'equal'"):
        _ = Params(merged(TEST_PARAMS, {"train": {"class_weight": "equal"}})).train


def test_binary_confusion_keys_are_plurals_of_the_class_names():
    from dogs_vs_cats.evaluation import confusion_counts

    rows = [{"actual": "box", "predicted": "puppy"}, {"actual": "puppy", "predicted": "puppy"}]
    assert confusion_counts(rows, ["box", "puppy"]) == {
        "true_boxes": 0, "false_puppies": 1, "false_boxes": 0, "true_puppies": 1}
    assert list(confusion_counts(rows, ["cat", "dog"])) == [
        "true_cats", "false_dogs", "false_cats", "true_dogs"]
    assert list(confusion_counts(rows, ["Cat", "toy"])) == [
        "true_Cats", "false_toys", "false_Cats", "true_toys"]


def test_outputs_become_classes_and_probabilities():
    two = np.float32([[0.2], [0.7]])
    assert predicted_labels(two).tolist() == [0, 1]
    assert reported_probability(two).tolist() == pytest.approx([0.2, 0.7])  # P(second class)
    np.testing.assert_allclose(class_probabilities(two), [[0.8, 0.2], [0.3, 0.7]], rtol=1e-6)
    three = np.float32([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    assert predicted_labels(three).tolist() == [1, 0]
    assert reported_probability(three).tolist() == pytest.approx([0.6, 0.5])  # the winner's


def test_three_class_metrics_confusion_and_per_class(capsys):
    outputs = np.float32([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6], [0.5, 0.1, 0.4],
                          [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]])
    labels = [0, 1, 2, 2, 2, 0]
    rows = prediction_rows(list("abcdef"), labels, outputs, THREE)
    assert rows[3] == {"file": "d", "actual": "dog", "predicted": "bird", "probability": 0.5,
                       "probabilities": {"bird": 0.5, "cat": 0.1, "dog": 0.4}}
    metrics = subset_metrics({"train": (1, 1), "validation": (1, 1)}, rows, outputs, THREE)["test"]
    expected_loss = -np.mean(np.log([0.8, 0.7, 0.6, 0.4, 0.8, 0.3]))
    assert metrics["loss"] == round(expected_loss, 4) and metrics["accuracy"] == round(4 / 6, 4)
    assert metrics["confusion"] == {"bird": {"bird": 1, "cat": 1, "dog": 0},
                                    "cat": {"bird": 0, "cat": 1, "dog": 0},
                                    "dog": {"bird": 1, "cat": 0, "dog": 2}}
    assert metrics["per_class"] == {"bird": {"precision": 0.5, "recall": 0.5},
                                    "cat": {"precision": 0.5, "recall": 1.0},
                                    "dog": {"precision": 1.0, "recall": 0.6667}}
    assert 0.5 < metrics["roc_auc"] <= 1
    assert "test: recall bird 0.5000, cat 1.0000, dog 0.6667" in capsys.readouterr().out


def test_curves_are_micro_averaged_one_vs_rest_for_more_classes(project):
    rows = prediction_rows(list("abc"), [0, 1, 2], np.float32([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3],
                                                               [0.1, 0.2, 0.7]]), THREE)
    write_curves(rows, THREE)
    roc = json.loads(ROC_FILE.read_text())
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}
    # The three right answers score 0.5 or more, the six wrong ones 0.3 or less: a perfect curve.
    assert {"fpr": 0.0, "tpr": 1.0} in roc
    assert json.loads(PRECISION_RECALL_FILE.read_text())[-1] == {"recall": 0.0, "precision": 1.0}
    assert confidence(rows[1], THREE) == 0.5
    binary = {"actual": "dog", "predicted": "cat", "probability": 0.2}
    assert confidence(binary, ["cat", "dog"]) == pytest.approx(0.8)  # P(cat) = 1 - P(dog)


def test_predict_names_the_winning_class(tmp_path, capsys):
    """A three-class classifier, exported as train exports it: predict.py prints its class names."""
    from dogs_vs_cats.conv_base import build_conv_base
    from dogs_vs_cats.model import build_classifier

    conv_base, preprocess_input = build_conv_base(ConvBase("mobilenet_v2", None, 32, 0), "float32")
    head = build_head(conv_base.output_shape[1:], units=4, dropout=0.5, learning_rate=1e-3, classes=THREE)
    head.layers[-1].bias.assign([0.0, 3.0, 0.0])  # a random base gives ~0 features: cat wins
    build_classifier(conv_base, preprocess_input, head, THREE).save(tmp_path / "model.keras")
    image = save_image(tmp_path / "photo.png", "bird", 1, fmt="PNG")
    predict.main([str(image), "--model", str(tmp_path / "model.keras"),
                  "--output", str(tmp_path / "out.json"), "--all-probabilities"])
    path, label, probability = capsys.readouterr().out.split()
    assert label == "cat" and float(probability) > 0.8
    row, = json.loads((tmp_path / "out.json").read_text())
    assert list(row["probabilities"]) == THREE and max(row["probabilities"].values()) == row["probability"]


def assert_split_as_before(before):
    """data/split/ holds what `before` held (but the report, which tells of the last attempt) and
    no temporary."""
    after = {path: path.read_bytes() for path in sorted(SPLIT_DIR.rglob("*")) if path.is_file()}
    assert {path: data for path, data in after.items() if path != SPLIT_REPORT} == {
        path: data for path, data in before.items() if path != SPLIT_REPORT}
    assert not [path for path in SPLIT_DIR.iterdir() if ".tmp" in path.name]


@pytest.mark.parametrize("copies_before_stop", [0, 7, 13])  # in train, in validation, in test
def test_an_interrupted_split_leaves_the_previous_one_whole(split_before, project, monkeypatch,
                                                             copies_before_stop):
    """Ctrl-C while the new subsets are copied: the old subsets and classes.json stay, all of them,
    and no temporary is left behind."""
    from dogs_vs_cats import raw_photos

    make_raw(project / "data/raw2", 9)  # 9 per class: 3 + 2 + 2 copied of each, 14 in all
    update_params(project, {"split": {"raw_dir": "data/raw2"}})
    copied = []

    def copy_then_stop(self, name, destination):
        if len(copied) == copies_before_stop:
            raise KeyboardInterrupt
        copied.append(name)
        original_copy(self, name, destination)

    original_copy = raw_photos.FolderPhotos.copy
    monkeypatch.setattr(raw_photos.FolderPhotos, "copy", copy_then_stop)
    with pytest.raises(KeyboardInterrupt):
        split.main()
    assert_split_as_before(split_before)


@pytest.mark.parametrize("renames_before_stop", [1, 3, 4, 5, 7])  # setting the old aside, moving the new in
def test_a_split_interrupted_while_it_swaps_puts_the_previous_one_back(split_before, project, monkeypatch,
                                                                       renames_before_stop):
    """The swap is eight renames (each old subset and classes.json aside, each new one in): Ctrl-C
    between any two puts every old output back."""
    from dogs_vs_cats.core import atomic

    make_raw(project / "data/raw2", 9)
    update_params(project, {"split": {"raw_dir": "data/raw2"}})
    renames = []

    def replace_then_stop(source, target):  # once: the renames that put the old back go through
        renames.append(source)
        if len(renames) == renames_before_stop + 1:
            raise KeyboardInterrupt
        original_replace(source, target)

    original_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", replace_then_stop)
    with pytest.raises(KeyboardInterrupt):
        split.main()
    assert_split_as_before(split_before)
