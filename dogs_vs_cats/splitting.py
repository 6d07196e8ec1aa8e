"""Splitting the raw images into train/validation/test folders, one sub-folder per class (the split stage).

Reads `split.raw_dir` in either layout:
  - Kaggle's flat `train/` folder: cat.123.jpg, dog.45.jpg
  - one folder per class, as in Microsoft's PetImages archive: Cat/1.jpg, Dog/1.jpg
Writes data/split/{train,validation,test}/{cats,dogs}/ and data/split/report.json, which lists
the files that were skipped and why.

Every candidate is decoded first, with the decoder `extract` uses, so that a file `extract`
could not read is reported here and never picked. The selection is a seeded shuffle per class,
cut in order train, validation, test: changing `split.test` leaves train and validation as they are.
"""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dogs_vs_cats.core.atomic import atomic_path, write_json
from dogs_vs_cats.core.labels import CLASSES
from dogs_vs_cats.core.layout import SPLIT_DIR, SPLIT_REPORT, SUBSETS
from dogs_vs_cats.core.params import ParamError, integer, positive_int, section
from dogs_vs_cats.images import read_image

# Folder or file-name prefixes that name a class, in either raw layout.
CLASS_NAMES = {"cat": "cats", "cats": "cats", "dog": "dogs", "dogs": "dogs"}


def check_split(params):
    """The split parameters, checked: (raw_dir, counts per subset, seed)."""
    raw_dir = section(params, "split").get("raw_dir")
    if raw_dir is None or not Path(str(raw_dir)).is_dir():
        raise ParamError("split.raw_dir", f"no folder at {str(raw_dir)!r}",
                         "download the images (README, 'Set up, run, test') or point "
                         "split.raw_dir at the folder that holds them")
    counts = {subset: positive_int(params, f"split.{subset}") for subset in SUBSETS}
    return Path(str(raw_dir)), counts, integer(params, "split.seed")


def find_candidates(raw_dir):
    """Map every file under raw_dir to its class (or None when its name matches no class)."""
    class_dirs = [d for d in sorted(raw_dir.iterdir()) if d.is_dir()]
    if any(d.name.lower() in CLASS_NAMES for d in class_dirs):
        # One folder per class; anything else at the top level belongs to no class.
        return {path: CLASS_NAMES.get(path.relative_to(raw_dir).parts[0].lower())
                for path in sorted(raw_dir.rglob("*")) if path.is_file()}
    return {path: CLASS_NAMES.get(path.name.split(".")[0].lower())
            for path in sorted(raw_dir.iterdir()) if path.is_file()}


def sort_candidates(candidates):
    """Split candidates into usable files per class and skipped files per reason.

    Files are copied into one folder per class under their own names, so of two usable files of
    a class with the same name (Cat/a/1.jpg, Cat/b/1.jpg) only the first is kept, and the other is
    reported, rather than one silently overwriting the other.
    """
    usable = {class_name: [] for class_name in CLASSES}
    names = {class_name: set() for class_name in CLASSES}
    skipped = {}
    with ThreadPoolExecutor() as pool:  # TensorFlow decodes outside the GIL
        problems = pool.map(lambda item: "name matches no class" if item[1] is None
                            else read_image(item[0])[1], candidates.items())
        for (path, class_name), problem in zip(candidates.items(), problems, strict=True):
            if not problem and path.name in names[class_name]:
                problem = "same file name as another image of its class"
            if problem:
                skipped.setdefault(problem, []).append(str(path))
            else:
                usable[class_name].append(path)
                names[class_name].add(path.name)
    return usable, skipped


def select(files, counts, seed):
    """Shuffle one class's files with `seed` and cut them into consecutive subsets."""
    order = np.random.default_rng(seed).permutation(len(files))
    shuffled = [files[i] for i in order]
    selection, start = {}, 0
    for subset in SUBSETS:
        selection[subset] = shuffled[start:start + counts[subset]]
        start += counts[subset]
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
    needed = sum(counts.values())
    for class_name, files in usable.items():
        if not files:
            raise ParamError("split.raw_dir",
                             f"{raw_dir} has no usable {class_name} images ({skipped_summary(skipped)})",
                             "point split.raw_dir at Kaggle's train/ folder (cat.1.jpg, dog.1.jpg...) "
                             "or at a folder with one sub-folder per class (Cat/, Dog/)")
        if len(files) < needed:
            raise ParamError("split.train/validation/test",
                             f"{needed} {class_name} needed ({counts['train']} + {counts['validation']} + "
                             f"{counts['test']}) but {raw_dir} has {len(files)} usable "
                             f"({skipped_summary(skipped)})",
                             "lower the per-class counts or add images")


def write_subsets(selections):
    """Copy each class's selected files into data/split/<subset>/<class>/, one whole subset at a time."""
    for subset in SUBSETS:
        with atomic_path(SPLIT_DIR / subset) as tmp:
            for class_name in CLASSES:
                (tmp / class_name).mkdir(parents=True)
                for path in selections[class_name][subset]:
                    shutil.copyfile(path, tmp / class_name / path.name)
        print(f"{subset}: " + ", ".join(f"{len(selections[c][subset])} {c}" for c in CLASSES))
