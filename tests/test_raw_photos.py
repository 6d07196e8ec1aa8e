"""split reading photos straight out of a zip archive, as out of a folder; and archives not to trust."""

import json
import zipfile

import pytest
from archives import petimages_zip

from dogs_vs_cats.core.layout import SPLIT_DIR, SPLIT_REPORT, SUBSETS
from dogs_vs_cats.core.params import ParamError
from dogs_vs_cats.splitting import check_split, find_candidates
from helpers import EMPTY, NO_CLASS, TEST_PARAMS, UNREADABLE, image_array, jpeg_bytes, merged, write_params
from stages import split

COUNTS = {"train": 3, "validation": 2, "test": 2}


def split_files():
    """{subset/class/name: bytes} of everything split wrote under data/split."""
    return {str(path.relative_to(SPLIT_DIR)): path.read_bytes()
            for subset in SUBSETS for path in sorted((SPLIT_DIR / subset).rglob("*")) if path.is_file()}


def report_names(archive):
    """{reason: [names inside the archive]} of data/split/report.json."""
    skipped = json.loads(SPLIT_REPORT.read_text())["skipped_files"]
    return {reason: sorted(file.removeprefix(f"{archive}/") for file in files)
            for reason, files in skipped.items()}


def run_split(project, raw_dir, **counts):
    write_params(project, {"split": {"raw_dir": str(raw_dir), **COUNTS, **counts}})
    split.main()


def test_a_zip_splits_as_the_same_photos_unpacked(project):
    archive = project / "photos.zip"
    archive.write_bytes(petimages_zip(9))
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(project / "unpacked")
    run_split(project, project / "unpacked")
    from_folder = split_files()
    run_split(project, archive)
    assert split_files() == from_folder and len(from_folder) == 2 * 7
    assert report_names(archive) == {EMPTY: ["PetImages/Cat/0.jpg"],
                                     UNREADABLE: ["PetImages/Dog/0.jpg", "PetImages/Dog/Thumbs.db"],
                                     NO_CLASS: ["readme[1].txt"]}
    assert sorted(p.name for p in project.iterdir()) == ["data", "params.yaml", "photos.zip", "unpacked"]


def test_the_flat_layout_inside_a_zip(project):
    archive = project / "train.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        for kind in ("cat", "dog"):
            for i in range(1, 8):
                zip_file.writestr(f"train/{kind}.{i}.jpg", jpeg_bytes(image_array(kind, i)))
    run_split(project, archive)
    assert json.loads(SPLIT_REPORT.read_text())["usable"] == {"cat": 7, "dog": 7}


def test_the_layout_is_found_at_its_shallowest_level():
    names = ["readme.txt", "PetImages/Cat/1.jpg", "PetImages/Dog/1.jpg", "PetImages/Dog/more/2.jpg",
             "other/Cat/3.jpg", "other/cat.4.jpg"]
    assert classes_of(find_candidates(names)) == (["other", "petimages"], {
        "readme.txt": None, "PetImages/Cat/1.jpg": "petimages", "PetImages/Dog/1.jpg": "petimages",
        "PetImages/Dog/more/2.jpg": "petimages", "other/Cat/3.jpg": "other", "other/cat.4.jpg": "other"})
    petimages = ["readme[1].txt", "CDLA-Permissive-2.0.pdf", "PetImages/Cat/1.jpg", "PetImages/Dog/1.jpg",
                 "PetImages/Dog/more/2.jpg"]
    assert classes_of(find_candidates(petimages)) == (["cat", "dog"], {
        "readme[1].txt": None, "CDLA-Permissive-2.0.pdf": None, "PetImages/Cat/1.jpg": "cat",
        "PetImages/Dog/1.jpg": "dog", "PetImages/Dog/more/2.jpg": "dog"})
    flat = ["cat.1.jpg", "dog.1.jpg", "notes.txt", "sub/cat.2.jpg"]  # Kaggle's: top-level files only
    assert classes_of(find_candidates(flat)) == (["cat", "dog"], {
        "cat.1.jpg": "cat", "dog.1.jpg": "dog", "notes.txt": None, "sub/cat.2.jpg": None})


def classes_of(found):
    """find_candidates's (classes, {name: (class, reason)}) as (classes, {name: class})."""
    classes, candidates = found
    return classes, {name: class_name for name, (class_name, _) in candidates.items()}


def test_all_the_rest_goes_to_train(project):
    archive = project / "photos.zip"
    archive.write_bytes(petimages_zip(9))
    run_split(project, archive, train="rest")
    counts = {subset: len(list((SPLIT_DIR / subset / "cat").iterdir())) for subset in SUBSETS}
    assert counts == {"train": 9 - 2 - 2, "validation": 2, "test": 2}
    # The same photos as with the count written out.
    chosen = split_files()
    run_split(project, archive, train=5)
    assert split_files() == chosen


def test_all_the_rest_needs_at_least_one(project):
    archive = project / "photos.zip"
    archive.write_bytes(petimages_zip(4, extra=False))
    needed = r"split\.train/validation/test: 5 cat needed \(at least 1 \+ 2 \+ 2\)"
    with pytest.raises(ParamError, match=needed):
        run_split(project, archive, train="rest")


# --- Archives not to trust: a clear skip or one line, never a write outside data/split ---------


@pytest.mark.parametrize("content", [b"PK\x03\x04 not really a zip", b"", "half"])
def test_not_a_zip_or_truncated_is_one_line_naming_the_parameter(project, content):
    archive = project / "photos.zip"
    whole = petimages_zip(5)
    archive.write_bytes(whole[:len(whole) // 2] if content == "half" else content)
    with pytest.raises(ParamError, match=r"params\.yaml split\.raw_dir: .*photos\.zip is not a readable "
                                         r"zip archive"):
        run_split(project, archive)
    assert not SPLIT_DIR.exists()


# Each would lead a copy out of its class folder on some system (C:x.jpg: drive C's folder on Windows).
UNSAFE = ["../escape.jpg", "PetImages/Cat/../../../escape2.jpg", "/PetImages/Cat/abs.jpg",
          "PetImages\\Cat\\win.jpg", "PetImages/Cat/C:escape3.jpg", "PetImages/Cat/CON.jpg",
          "PetImages/Cat/a?.jpg", "PetImages/Cat/trailing.jpg."]


def hostile_zip(path):
    """Seven good photos per class, and members that must each be skipped."""
    with zipfile.ZipFile(path, "w") as zip_file:
        for folder, kind in (("Cat", "cat"), ("Dog", "dog")):
            for i in range(1, 8):
                zip_file.writestr(f"PetImages/{folder}/{i}.jpg", jpeg_bytes(image_array(kind, i)))
        for name in UNSAFE:
            zip_file.writestr(name, jpeg_bytes(image_array("cat", 99)))
        corrupt = zipfile.ZipInfo("PetImages/Dog/deflate.jpg")
        corrupt.compress_type = zipfile.ZIP_DEFLATED
        zip_file.writestr(corrupt, jpeg_bytes(image_array("dog", 98)))
        zip_file.writestr(zipfile.ZipInfo("PetImages/Cat/crc.jpg"), jpeg_bytes(image_array("cat", 98)))
        bomb = zipfile.ZipInfo("PetImages/Dog/bomb.jpg")
        bomb.compress_type = zipfile.ZIP_DEFLATED
        zip_file.writestr(bomb, bytes(100 * 2**20))  # 100 MiB of zeros: about 100 KB compressed
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zip_file:  # a stored member's CRC fails; a deflated one's data too
        for name, where in (("PetImages/Cat/crc.jpg", 100), ("PetImages/Dog/deflate.jpg", 2)):
            info = zip_file.getinfo(name)
            data[info.header_offset + 30 + len(info.filename) + where] ^= 0xFF
    path.write_bytes(bytes(data))


def test_hostile_members_are_skipped_with_their_reason(project, tmp_path):
    archive = project / "photos.zip"
    hostile_zip(archive)
    before = sorted(tmp_path.parent.iterdir())
    run_split(project, archive)
    report = json.loads(SPLIT_REPORT.read_text())
    assert report["usable"] == {"cat": 7, "dog": 7}
    names = report_names(archive)
    unsafe = [reason for reason in names if reason.startswith("unsafe name")]
    assert len(unsafe) == 1 and sorted(names[unsafe[0]]) == sorted(UNSAFE)
    corrupt = {file: reason for reason, files in names.items() for file in files
               if reason.startswith("corrupt in the archive")}
    assert "Bad CRC-32" in corrupt["PetImages/Cat/crc.jpg"]
    assert "error" in corrupt["PetImages/Dog/deflate.jpg"]  # zlib's error, or a short stream's
    assert any(reason.startswith("declared size 104,857,600 bytes") and files == ["PetImages/Dog/bomb.jpg"]
               for reason, files in names.items())
    assert NO_CLASS not in names
    # Nothing was written beside the project, nor anywhere in it but data/.
    assert sorted(tmp_path.parent.iterdir()) == before
    assert sorted(p.name for p in project.iterdir()) == ["data", "params.yaml", "photos.zip"]
    assert not list(project.rglob("escape*")) and not list(project.rglob("bomb.jpg"))


@pytest.mark.parametrize("train", ["all", 0, 2.5])
def test_a_bad_train_count_says_rest_is_allowed(train):
    with pytest.raises(ParamError, match=r"split\.train: must be a whole number above 0 or 'rest'"):
        check_split(merged(TEST_PARAMS, {"split": {"train": train, "raw_dir": "data/download/photos.zip"}}))
