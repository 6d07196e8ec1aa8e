"""stages/split.py, dogs_vs_cats/splitting.py: which images go where, reproducibly, in either raw layout."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from dogs_vs_cats.core.layout import CLASSES_FILE, SPLIT_DIR, SPLIT_REPORT, SUBSETS
from dogs_vs_cats.core.params import ParamError
from dogs_vs_cats.images import load_image
from dogs_vs_cats.splitting import DUPLICATE, HIDDEN, IN_TWO_CLASSES, select
from helpers import (
    CLASSES,
    EMPTY,
    NO_CLASS,
    UNREADABLE,
    make_raw,
    save_image,
    update_params,
    write_bad_files,
    write_params,
)
from stages import split


def selection():
    """{subset: {class: sorted file names}} as split wrote them under data/split."""
    return {subset: {class_name: sorted(p.name for p in (SPLIT_DIR / subset / class_name).iterdir())
                     for class_name in CLASSES}
            for subset in SUBSETS}


@pytest.mark.parametrize("layout", ["flat", "folders"])
def test_counts_per_class_and_subset(project, layout, capsys):
    make_raw(project / "data/raw", 10, layout)
    write_params(project, {"split": {"train": 4, "validation": 3, "test": 2}})
    split.main()

    chosen = selection()
    for subset, count in (("train", 4), ("validation", 3), ("test", 2)):
        for class_name in CLASSES:
            assert len(chosen[subset][class_name]) == count, (subset, class_name)
    # Each file landed in its own class's folder.
    if layout == "flat":
        for subset in SUBSETS:
            assert all(name.startswith("cat.") for name in chosen[subset]["cat"])
            assert all(name.startswith("dog.") for name in chosen[subset]["dog"])
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["usable"] == {"cat": 10, "dog": 10} and report["classes"] == ["cat", "dog"]
    assert json.loads(CLASSES_FILE.read_text()) == ["cat", "dog"]
    assert report["skipped"] == {} and report["skipped_files"] == {}
    out = capsys.readouterr().out
    assert "train: cat 4, dog 4" in out and "test: cat 2, dog 2" in out


def test_folder_layout_keeps_classes_apart(project):
    """cat/1.jpg and dog/1.jpg share a name: each must end up in its own class, byte for byte."""
    make_raw(project / "data/raw", 7, "folders")
    write_params(project)
    split.main()
    for subset in SUBSETS:
        for class_name in CLASSES:
            for path in (SPLIT_DIR / subset / class_name).iterdir():
                assert path.read_bytes() == (project / "data/raw" / class_name / path.name).read_bytes()


def test_same_params_same_selection(project):
    make_raw(project / "data/raw", 12)
    write_params(project)
    split.main()
    first = selection()
    split.main()  # again, over the previous output
    assert selection() == first

    update_params(project, {"split": {"seed": 7}})
    split.main()
    assert selection() != first, "another seed should pick other images"


def test_no_overlap_between_subsets(project):
    make_raw(project / "data/raw", 12)
    write_params(project, {"split": {"train": 5, "validation": 4, "test": 3}})  # uses all 12
    split.main()
    chosen = selection()
    for class_name in CLASSES:
        sets = [set(chosen[subset][class_name]) for subset in SUBSETS]
        assert sets[0].isdisjoint(sets[1]) and sets[0].isdisjoint(sets[2]) and sets[1].isdisjoint(sets[2])
        assert len(set().union(*sets)) == 12


def test_changing_test_count_keeps_train_and_validation(project):
    make_raw(project / "data/raw", 12)
    write_params(project, {"split": {"train": 4, "validation": 3, "test": 2}})
    split.main()
    before = selection()
    update_params(project, {"split": {"test": 5}})
    split.main()
    after = selection()
    assert after["train"] == before["train"]
    assert after["validation"] == before["validation"]
    for class_name in CLASSES:
        assert len(after["test"][class_name]) == 5
        assert set(before["test"][class_name]) <= set(after["test"][class_name])


def digests(count, start=0):
    """{name: a SHA-256 in hexadecimal} for `count` made-up photos."""
    return {f"cat.{i}.jpg": hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, start + count)}


REST = {"train": "rest", "validation": 20, "test": 20}


def test_select_depends_on_each_photo_not_on_the_list():
    photos = digests(100)
    chosen = select(photos, REST, seed=1)
    assert sorted(sum(chosen.values(), [])) == sorted(photos)  # every photo, once
    assert [len(chosen[subset]) for subset in SUBSETS] == [60, 20, 20]
    # The list's order and the photos' names change nothing: a renamed photo keeps its subset.
    renamed = {f"renamed.{name}": digest for name, digest in reversed(photos.items())}
    assert select(renamed, REST, seed=1) == {subset: sorted(f"renamed.{name}" for name in names)
                                             for subset, names in chosen.items()}
    assert select(photos, REST, seed=2) != chosen
    # Changing split.test keeps train and validation (with counts that leave photos unused).
    counts = {"train": 30, "validation": 20, "test": 10}
    fewer, more = select(photos, counts, seed=1), select(photos, dict(counts, test=40), seed=1)
    assert fewer["train"] == more["train"] and fewer["validation"] == more["validation"]
    assert set(fewer["test"]) < set(more["test"])


@pytest.mark.parametrize("counts", [REST, {"train": 50, "validation": 20, "test": 20}])
def test_adding_photos_moves_an_old_one_only_where_a_new_one_lands(counts):
    """A new photo displaces an old one from validation or test only by taking its place there; on
    average k new photos move about k x (subset size / n) old ones out of each."""
    moved, trials, n, k = {"validation": 0, "test": 0}, 50, 200, 10
    for trial in range(trials):
        before = select(digests(n), counts, seed=trial)
        after = select(digests(n + k), counts, seed=trial)
        new = set(digests(k, start=n))
        for subset in moved:
            left = set(before[subset]) - set(after[subset])
            assert len(left) == len(set(after[subset]) & new), subset
            moved[subset] += len(left)
    for subset, count in moved.items():
        expected = k * counts[subset] / (n + k)
        assert count / trials < 1.5 * expected, (subset, count / trials, expected)


def test_removing_a_photo_moves_only_its_replacement():
    photos = digests(100)
    before = select(photos, REST, seed=3)
    gone = before["test"][0]
    after = select({name: d for name, d in photos.items() if name != gone}, REST, seed=3)
    assert after["validation"] == before["validation"]
    assert set(after["test"]) - set(before["test"]) <= set(before["train"])
    assert len(set(before["test"]) - set(after["test"])) == 1  # the removed photo only


def test_the_same_selection_from_scratch_as_after_additions(project):
    make_raw(project / "data/raw", 12)
    write_params(project, {"split": {"train": "rest", "validation": 2, "test": 2}})
    split.main()
    make_raw(project / "data/raw", 4, start=13)  # four more per class
    split.main()
    grown = selection()
    shutil.rmtree(SPLIT_DIR)
    split.main()
    assert selection() == grown


def test_a_renamed_photo_keeps_its_subset(project):
    make_raw(project / "data/raw", 12)
    write_params(project, {"split": {"train": "rest", "validation": 3, "test": 3}})
    split.main()
    before = selection()
    os.rename(project / "data/raw/cat.5.jpg", project / "data/raw/cat.500.jpg")
    split.main()
    after = selection()
    for subset in SUBSETS:
        renamed = [name.replace("cat.5.jpg", "cat.500.jpg") for name in before[subset]["cat"]]
        assert after[subset]["cat"] == sorted(renamed) and after[subset]["dog"] == before[subset]["dog"]


def test_exact_duplicates_are_kept_once_and_reported(project, capsys):
    raw = Path("data/raw")  # as split.raw_dir names it, and so the report
    make_raw(raw, 10)
    shutil.copy(raw / "cat.3.jpg", raw / "cat.30.jpg")  # the same photo twice in its class
    shutil.copy(raw / "cat.4.jpg", raw / "dog.40.jpg")  # and in two classes: which label is right?
    write_params(project, {"split": {"train": "rest", "validation": 2, "test": 2}})
    split.main()
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["duplicates"] == [[str(raw / "cat.3.jpg"), str(raw / "cat.30.jpg")],
                                    [str(raw / "cat.4.jpg"), str(raw / "dog.40.jpg")]]
    assert report["skipped_files"] == {DUPLICATE: [str(raw / "cat.30.jpg")],
                                       IN_TWO_CLASSES: [str(raw / "cat.4.jpg"), str(raw / "dog.40.jpg")]}
    assert report["usable"] == {"cat": 9, "dog": 10}
    chosen = selection()
    every = [name for subset in SUBSETS for names in chosen[subset].values() for name in names]
    assert "cat.3.jpg" in every and not {"cat.30.jpg", "cat.4.jpg", "dog.40.jpg"} & set(every)
    assert f"skipped 1 file(s), {DUPLICATE}" in capsys.readouterr().out


@pytest.mark.parametrize("layout", ["flat", "folders"])
def test_too_few_images_is_a_clear_error_before_writing(project, layout):
    make_raw(project / "data/raw", 6, layout)
    write_params(project, {"split": {"train": 4, "validation": 2, "test": 2}})  # 8 > 6
    with pytest.raises(ParamError) as error:
        split.main()
    message = str(error.value)
    assert "split.train" in message and "8" in message and "6" in message
    # Only the report, which says what was found: no subset is written when the split cannot be made.
    assert sorted(p.name for p in SPLIT_DIR.iterdir()) == ["report.json"]


def test_too_few_images_keeps_the_previous_split(project):
    make_raw(project / "data/raw", 8)
    write_params(project)
    split.main()
    before = selection()
    update_params(project, {"split": {"train": 20}})
    with pytest.raises(ParamError):
        split.main()
    assert selection() == before


def test_nested_folders_with_clashing_names_are_reported_not_overwritten(project):
    raw = project / "data/raw"
    make_raw(raw, 6, "folders")
    for i in (1, 2):  # cat/more/1.jpg: same name as cat/1.jpg, a different picture
        save_image(raw / "cat" / "more" / f"{i}.jpg", "cat", 100 + i)
    write_params(project, {"split": {"train": 3, "validation": 2, "test": 1}})
    split.main()
    report = json.loads(SPLIT_REPORT.read_text())
    clashes = report["skipped_files"]["same file name as another image of its class"]
    assert sorted(Path(p).name for p in clashes) == ["1.jpg", "2.jpg"]
    assert report["usable"]["cat"] == 6


# --- Dirty raw folders: unusable files are skipped and reported -----------------------------------


@pytest.fixture
def dirty(project):
    """A flat raw folder: 6 good images per class plus the dirty files; cwd is the project."""
    raw = project / "data/raw"
    make_raw(raw, 6)
    return project, write_bad_files(raw)


def test_split_skips_unusable_files_and_reports_why(dirty, capsys):
    project, expected = dirty
    # Every usable image is needed (6 good + 3 odd-but-usable per class): all must pass.
    write_params(project, {"split": {"train": 5, "validation": 2, "test": 2}})
    split.main()

    report = json.loads(SPLIT_REPORT.read_text())
    assert report["usable"] == {"cat": 9, "dog": 9}
    reasons = {}
    for name, outcome in expected.items():
        if isinstance(outcome, str):
            reasons.setdefault(outcome, []).append(name)
    assert {reason: sorted(os.path.basename(f) for f in files)
            for reason, files in report["skipped_files"].items()} == {
        reason: sorted(names) for reason, names in reasons.items()}
    assert report["skipped"] == {reason: len(names) for reason, names in reasons.items()}

    out = capsys.readouterr().out
    for reason, names in reasons.items():
        assert f"skipped {len(names)} file(s), {reason}" in out
    assert "report: data/split/report.json" in out

    # Every usable odd file was picked, and loads as an RGB image of the conv base's input size.
    picked = {p.name: p for p in SPLIT_DIR.rglob("*.jpg")}
    for name, outcome in expected.items():
        if isinstance(outcome, tuple):
            assert name in picked, name
            assert load_image(str(picked[name]), 32).shape == (32, 32, 3)
    assert len(picked) == 18


def test_per_class_folders_with_junk(project):
    raw = project / "data/raw"
    make_raw(raw, 4, "folders")
    (raw / "cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(100))
    (raw / "dog" / "broken.jpg").write_bytes(b"")
    (raw / "dog" / ".DS_Store").write_bytes(bytes(100))
    (raw / "README.txt").write_text("PetImages\n")
    write_params(project, {"split": {"train": 2, "validation": 1, "test": 1}})
    split.main()
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["usable"] == {"cat": 4, "dog": 4}
    names = {reason: sorted(os.path.relpath(f, raw) for f in files)
             for reason, files in report["skipped_files"].items()}
    assert names == {UNREADABLE: ["cat/Thumbs.db"], EMPTY: ["dog/broken.jpg"], HIDDEN: ["dog/.DS_Store"],
                     NO_CLASS: ["README.txt"]}


# --- Parameter validation: a ParamError naming the parameter, before anything is written ----------


@pytest.mark.parametrize("overrides, parameter", [
    ({"raw_dir": None}, "split.raw_dir"),
    ({"raw_dir": "data/nowhere"}, "split.raw_dir"),
    ({"train": 0}, "split.train"),
    ({"validation": -2}, "split.validation"),
    ({"test": 0}, "split.test"),
    ({"test": 1.5}, "split.test"),
    ({"seed": "abc"}, "split.seed"),
])
def test_bad_split_params_name_the_parameter(project, overrides, parameter):
    make_raw(project / "data/raw", 8)
    write_params(project, {"split": overrides})
    with pytest.raises(ParamError) as error:
        split.main()
    assert parameter in str(error.value)
    assert not SPLIT_DIR.exists()


def test_missing_raw_dir_key(project):
    make_raw(project / "data/raw", 8)
    params = write_params(project)
    del params["split"]["raw_dir"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError, match=r"split\.raw_dir"):
        split.main()
    assert not SPLIT_DIR.exists()


@pytest.mark.parametrize("layout", ["flat", "folders"])
def test_a_single_class_is_one_line_naming_it(project, layout):
    make_raw(project / "data/raw", 8, layout)
    for path in list((project / "data/raw").rglob("*")):
        if "dog" in str(path.relative_to(project / "data/raw")).lower() and path.is_file():
            path.unlink()
    write_params(project)
    with pytest.raises(ParamError) as error:
        split.main()
    message = str(error.value)
    assert message.count("\n") == 0 and "split.raw_dir" in message
    assert "has 1 class(es) (cat); a classifier needs two or more" in message
    assert not SPLIT_DIR.exists()


def test_files_of_no_class_are_counted_in_the_error(project):
    """kitty_1.png beside dog.1.jpg: one class found; the error counts the others, with an example."""
    for i in range(20):
        save_image(project / "data/raw" / f"kitty_{i}.png", "cat", i, fmt="PNG")
    make_raw(project / "data/raw", 8, start=100)
    for path in (project / "data/raw").glob("cat.*.jpg"):
        path.unlink()
    write_params(project)
    with pytest.raises(ParamError) as error:
        split.main()
    message = str(error.value)
    assert "has 1 class(es) (dog)" in message
    assert "20 file(s) match no class, e.g. data/raw/kitty_0.png" in message


def test_no_usable_images_of_a_class_says_how_many_files_were_skipped_and_why(project):
    """Every cat photo unreadable: the error counts them, gives an example, and the report stays."""
    make_raw(project / "data/raw", 8)
    for path in (project / "data/raw").glob("cat.*.jpg"):
        path.write_bytes(b"")
    write_params(project)
    with pytest.raises(ParamError) as error:
        split.main()
    message = str(error.value)
    assert message.count("\n") == 0 and "split.raw_dir" in message and "no usable cat images" in message
    assert "8 file(s) skipped: 8 empty file, e.g. data/raw/cat.1.jpg" in message
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["skipped"] == {EMPTY: 8} and report["usable"] == {"cat": 0, "dog": 8}
