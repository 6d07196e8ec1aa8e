"""Splitting the raw photos into train/validation/test folders, one sub-folder per class (the split stage).

Reads `split.raw_dir`, a folder or a .zip archive (dogs_vs_cats/raw_photos.py), in either layout:
  - Kaggle's flat `train/` folder: cat.123.jpg, dog.45.jpg
  - one folder per class, as in Microsoft's PetImages archive: PetImages/Cat/1.jpg, PetImages/Dog/1.jpg
at the shallowest level where one appears (the archive's PetImages/, beside its readme).
Writes data/split/{train,validation,test}/{cats,dogs}/ and data/split/report.json, which lists
the files that were skipped and why.

Every candidate is decoded first, with the decoder `extract` uses, so that a file `extract`
could not read is reported here and never picked. The selection is a seeded shuffle per class,
cut in order train, validation, test: changing `split.test` leaves train and validation as they
are. `split.train: rest` (ALL_THE_REST) gives train every usable photo of a class that validation
and test do not take.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np

from dogs_vs_cats.core.atomic import atomic_path, write_json
from dogs_vs_cats.core.labels import CLASSES
from dogs_vs_cats.core.layout import DOWNLOAD_FILE, SPLIT_DIR, SPLIT_REPORT, SUBSETS
from dogs_vs_cats.core.params import ParamError, integer, positive_int, section
from dogs_vs_cats.images import judge_image
from dogs_vs_cats.raw_photos import Unreadable

# Folder or file-name prefixes that name a class, in either raw layout.
CLASS_NAMES = {"cat": "cats", "cats": "cats", "dog": "dogs", "dogs": "dogs"}
FOLDERS, FLAT = 0, 1  # the two layouts, in the order that breaks a tie
ALL_THE_REST = "rest"  # a count meaning: every usable photo of the class that the other subsets leave


def check_split(params):
    """The split parameters, checked: (raw_dir, counts per subset, seed).

    split.raw_dir may be the download stage's output before that stage has run (data/dvc.yaml).
    """
    raw_dir = section(params, "split").get("raw_dir")
    if raw_dir is None or not (Path(str(raw_dir)).exists() or Path(str(raw_dir)) == DOWNLOAD_FILE):
        raise ParamError("split.raw_dir", f"no folder or .zip archive at {str(raw_dir)!r}",
                         f"set it to {DOWNLOAD_FILE} (downloaded by `dvc repro`) or to the folder "
                         "that holds your photos (README: Data)")
    counts = {subset: positive_int(params, f"split.{subset}") for subset in SUBSETS[1:]}
    train = section(params, "split").get("train")
    try:
        counts["train"] = train if train == ALL_THE_REST else positive_int(params, "split.train")
    except ParamError as error:
        raise ParamError("split.train", f"must be a whole number above 0 or {ALL_THE_REST!r}, got {train!r}",
                         f"set it to a count per class, or to {ALL_THE_REST}: every usable photo that "
                         "validation and test leave") from error
    return Path(str(raw_dir)), counts, integer(params, "split.seed")


def find_candidates(names):
    """Map every file name (relative to the raw folder or archive) to its class, or to None.

    The layout is found at the shallowest level holding a class folder (Cat/) or a class-named
    file (cat.1.jpg), a folder winning a tie: with class folders, every file is a candidate, of
    the class of its folder there (files elsewhere belong to no class); in the flat layout, the
    files of that one folder are, by the start of their names.
    """
    layouts = []
    for name in names:
        parts = PurePosixPath(name).parts
        folder = next((depth for depth, part in enumerate(parts[:-1]) if part.lower() in CLASS_NAMES), None)
        if folder is not None:
            layouts.append((folder, FOLDERS, parts[:folder]))
        if class_of_file(parts[-1]):
            layouts.append((len(parts) - 1, FLAT, parts[:-1]))
    depth, kind, root = min(layouts, default=(0, FLAT, ()))
    candidates = {}
    for name in names:
        parts = PurePosixPath(name).parts
        if kind == FOLDERS:
            inside = parts[:depth] == root and len(parts) > depth + 1
            candidates[name] = CLASS_NAMES.get(parts[depth].lower()) if inside else None
        elif parts[:-1] == root:
            candidates[name] = class_of_file(parts[-1])
    return candidates


def class_of_file(file_name):
    """The class that a flat file's name starts with (cat.1.jpg: cats), or None."""
    return CLASS_NAMES.get(file_name.split(".")[0].lower())


def sort_candidates(photos, candidates):
    """Split candidates into usable names per class and skipped files (as reported) per reason.

    Files are copied into one folder per class under their own names, so of two usable files of
    a class with the same name (Cat/a/1.jpg, Cat/b/1.jpg) only the first is kept, and the other is
    reported, rather than one silently overwriting the other.
    """
    def problem_of(item):
        name, class_name = item
        if refused := photos.refused(name):
            return refused
        if class_name is None:
            return "name matches no class"
        try:
            return judge_image(photos.read(name))[1]
        except Unreadable as error:
            return str(error)

    usable = {class_name: [] for class_name in CLASSES}
    names = {class_name: set() for class_name in CLASSES}
    skipped = {}
    with ThreadPoolExecutor() as pool:  # TensorFlow decodes, and zlib inflates, outside the GIL
        for (name, class_name), problem in zip(candidates.items(), pool.map(problem_of, candidates.items()),
                                               strict=True):
            file_name = PurePosixPath(name).name
            if not problem and file_name in names[class_name]:
                problem = "same file name as another image of its class"
            if problem:
                skipped.setdefault(problem, []).append(photos.path(name))
            else:
                usable[class_name].append(name)
                names[class_name].add(file_name)
    return usable, skipped


def subset_sizes(count, counts):
    """How many of a class's `count` usable photos each subset takes (train may be ALL_THE_REST)."""
    sizes = dict(counts)
    if sizes["train"] == ALL_THE_REST:
        sizes["train"] = count - sizes["validation"] - sizes["test"]
    return sizes


def select(files, counts, seed):
    """Shuffle one class's files with `seed` and cut them into consecutive subsets."""
    order = np.random.default_rng(seed).permutation(len(files))
    shuffled = [files[i] for i in order]
    sizes = subset_sizes(len(files), counts)
    selection, start = {}, 0
    for subset in SUBSETS:
        selection[subset] = shuffled[start:start + sizes[subset]]
        start += sizes[subset]
    return selection


def skipped_summary(skipped):
    """One phrase for the skipped files: how many, why, with an example of each reason."""
    if not skipped:
        return "no file was skipped"
    total = sum(len(files) for files in skipped.values())
    reasons = "; ".join(f"{len(files)} {reason}, e.g. {files[0]}" for reason, files in skipped.items())
    return f"{total} file(s) skipped: {reasons}; all listed in {SPLIT_REPORT}"


def write_report(raw_dir, usable, skipped):
    """data/split/report.json: the usable images per class, and every skipped file and why; printed too."""
    write_json(SPLIT_REPORT, {
        "raw_dir": str(raw_dir),
        "usable": {class_name: len(files) for class_name, files in usable.items()},
        "skipped": {reason: len(files) for reason, files in skipped.items()},
        "skipped_files": skipped,
    })
    for reason, files in skipped.items():
        print(f"skipped {len(files)} file(s), {reason}: " + ", ".join(files[:5])
              + (", ..." if len(files) > 5 else ""))
    print(f"report: {SPLIT_REPORT}")


def check_counts(raw_dir, usable, skipped, counts):
    """Raise a ParamError when a class has no usable image, or fewer than the subsets take."""
    for class_name, files in usable.items():
        if not files:
            raise ParamError("split.raw_dir",
                             f"{raw_dir} has no usable {class_name} images ({skipped_summary(skipped)})",
                             "point split.raw_dir at Kaggle's train/ folder (cat.1.jpg, dog.1.jpg...) "
                             "or at a folder or .zip with one sub-folder per class (Cat/, Dog/)")
        sizes = subset_sizes(len(files), counts)
        if min(sizes.values()) < 1 or sum(sizes.values()) > len(files):
            rest = counts["train"] == ALL_THE_REST
            train = 1 if rest else counts["train"]
            needed = train + counts["validation"] + counts["test"]
            raise ParamError("split.train/validation/test",
                             f"{needed} {class_name} needed ({'at least ' if rest else ''}{train} + "
                             f"{counts['validation']} + {counts['test']}) but {raw_dir} has {len(files)} "
                             f"usable ({skipped_summary(skipped)})",
                             "lower the per-class counts or add images")


def write_subsets(photos, selections):
    """Copy each class's selected files into data/split/<subset>/<class>/, one whole subset at a time."""
    for subset in SUBSETS:
        with atomic_path(SPLIT_DIR / subset) as tmp:
            for class_name in CLASSES:
                (tmp / class_name).mkdir(parents=True)
                for name in selections[class_name][subset]:
                    photos.copy(name, tmp / class_name / PurePosixPath(name).name)
        print(f"{subset}: " + ", ".join(f"{len(selections[c][subset])} {c}" for c in CLASSES))
