"""Splitting the raw photos into train/validation/test folders, one sub-folder per class (the split stage).

Reads `split.raw_dir`, a folder or a .zip archive (dogs_vs_cats/raw_photos.py), and finds the
classes in the data (their names in lower case: Cat/ and cat.1.jpg are both cat), in one of two
layouts:
  - one sub-folder per class, any names, any number: roses/1.jpg, tulips/1.jpg (PetImages: Cat/, Dog/),
    at the shallowest level holding two such folders (the archive's PetImages/, beside its readme);
  - files named <class>.<anything>.<image suffix> in one folder, as Kaggle's flat train/: cat.1.jpg,
    dog.45.jpg (the shallowest folder whose files name two classes; this layout wins where both appear).
`split.classes` (a list) picks classes and their order; otherwise every class found, sorted.
Writes data/split/{train,validation,test}/<class>/, data/split/classes.json (the class names in
label order, read by every later stage) and data/split/report.json, which lists the classes and
every file that was skipped and why.

Every candidate is decoded first, with the decoder `extract` uses, so that a file `extract`
could not read is reported here and never picked. Exact duplicates (the same bytes under two
names) are kept once, and reported; the same bytes in two classes are left out, all copies.

A photo's subset depends on its own bytes and `split.seed`, not on the other photos (`select`):
each class is ordered by a keyed hash of the two, validation takes the lowest, test the highest,
train those next above validation (`split.train: rest`, ALL_THE_REST: all those between). So
adding photos moves few (a new photo displaces one of test only when it ranks among test's), a
renamed photo keeps its subset, changing `split.test` leaves train and validation as they are,
and the result is the same from scratch as after any history of additions.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dogs_vs_cats.core.atomic import atomic_paths, json_text, write_json
from dogs_vs_cats.core.layout import CLASSES_FILE, DOWNLOAD_FILE, SPLIT_DIR, SPLIT_REPORT, SUBSETS
from dogs_vs_cats.core.params import ALL_THE_REST, ParamError, Params, Split
from dogs_vs_cats.raw_photos import Unreadable, sorted_names, windows_refuses

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence, Sized

    from dogs_vs_cats.raw_photos import FolderPhotos, ZipPhotos

    # Each file name (relative to split.raw_dir) -> (its class, None) or (None, why it has none).
    Candidates = dict[str, tuple[str | None, str | None]]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")  # what a flat file's name ends with
NO_CLASS = "name matches no class"
NOT_LISTED = "class not in split.classes"
HIDDEN = "hidden or system file (a name starting with '.', __MACOSX)"
DUPLICATE = "the same bytes as another photo of its class (kept once)"
IN_TWO_CLASSES = "the same bytes in two classes (which label is right?)"
FLAT, FOLDERS = "flat", "folders"  # the two layouts


def check_split(params: Params | dict) -> Split:
    """The split section, checked, and split.raw_dir found on disk.

    split.raw_dir may be the download stage's archive before that stage has run.

    Args:
        params: params.yaml (core.params.load_params).

    Returns:
        The split section.
    """
    split = Params.of(params).split
    raw_dir = split.raw_dir
    if raw_dir is None or not (Path(str(raw_dir)).exists() or Path(str(raw_dir)) == DOWNLOAD_FILE):
        raise ParamError("split.raw_dir", f"no folder or .zip archive at {str(raw_dir)!r}",
                         f"set it to {DOWNLOAD_FILE} (downloaded by `dvc repro`) or to the folder "
                         "that holds your photos (README: Data)")
    return split


def hidden(parts: Iterable[str]) -> bool:
    """Whether a name is a hidden or system file, or inside such a folder (macOS's zip metadata)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def flat_class(file_name: str) -> str | None:
    """The class a flat file's name gives, <class>.<anything>.<image suffix> (cat.1.jpg: cat), or None."""
    stem, _, rest = file_name.partition(".")
    return stem if stem and "." in rest and file_name.lower().endswith(IMAGE_SUFFIXES) else None


def find_layout(names: Iterable[str],
                wanted: Sequence[str] | None = None) -> tuple[str, list[tuple[str, ...]], set[str]]:
    """Where the classes are: (FLAT or FOLDERS, the root folders (parts), the classes found there).

    Only image files (by suffix) count; with `wanted` (lower case), only those classes. The
    shallowest folder whose files name two classes is the flat layout, which wins; otherwise the
    shallowest folder with two sub-folders holding images, at any depth, each sub-folder a class,
    unless those sub-folders all hold the same classes themselves (the book's train/, validation/
    and test/, each with cats/ and dogs/): then their classes, the photos of all of them. Roots at
    the same depth with the same classes are taken together; with different ones, a ParamError.
    Failing all, the shallowest level with one class, which check_classes_found refuses.
    """
    flat, folders = defaultdict(set), defaultdict(set)
    for name in names:
        parts = PurePosixPath(name).parts
        unsafe = ".." in parts or name.startswith("/")  # never a class
        if unsafe or hidden(parts) or not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        if (class_name := flat_class(parts[-1])) is not None:
            flat[parts[:-1]].add(class_name.lower())
        for depth in range(len(parts) - 1):
            folders[parts[:depth]].add(parts[depth])

    def classes_of(children):
        lower = {child.lower() for child in children}
        return lower if wanted is None else lower & set(wanted)

    for least in (2, 1):
        for kind, levels in ((FLAT, flat), (FOLDERS, folders)):
            found = {root: classes_of(children) for root, children in levels.items()}
            found = {root: classes for root, classes in found.items() if len(classes) >= least}
            if not found:
                continue
            depth = min(len(root) for root in found)
            roots = sorted(root for root in found if len(root) == depth)
            if kind == FOLDERS and len(roots) == 1:
                inner = [roots[0] + (child,) for child in sorted(levels[roots[0]])]
                if all(len(found.get(root, ())) >= 2 for root in inner) and len(
                        {frozenset(found[root]) for root in inner}) == 1:
                    roots = inner  # the book's train/, validation/, test/: the same classes in each
            if least == 1:
                return kind, roots[:1], found[roots[0]]
            if len({frozenset(found[root]) for root in roots}) > 1:
                raise ParamError("split.raw_dir", "classes in several folders, not the same in each: "
                                 + "; ".join(f"{'/'.join(root)}/: {', '.join(sorted(found[root]))}"
                                             for root in roots),
                                 "point split.raw_dir at one of them, or list the classes in split.classes")
            return kind, roots, found[roots[0]]
    return FLAT, [()], set()


def find_candidates(names: Sequence[str],
                    wanted: Sequence[str] | None = None) -> tuple[list[str], Candidates]:
    """(classes, candidates): the class names in label order (lower case: Cat/ and cat.1.jpg are
    both cat), and each file name (relative to the raw folder or archive) mapped to (its class,
    None) or (None, why it has none). Two spellings of one class are a ParamError."""
    wanted = [name.lower() for name in wanted] if wanted is not None else None
    kind, roots, found = find_layout(names, wanted)
    classes = wanted if wanted is not None else sorted(found)
    candidates, spellings = {}, defaultdict(set)
    for name in names:
        parts = PurePosixPath(name).parts
        if hidden(parts):
            candidates[name] = None, HIDDEN
            continue
        class_name = None
        for root in roots:
            below = parts[len(root):] if parts[:len(root)] == root else ()
            if kind == FOLDERS and len(below) > 1:
                class_name = below[0]
            elif kind == FLAT and len(below) == 1:
                class_name = flat_class(below[0])
        if class_name is not None and class_name.lower() in classes:
            candidates[name] = class_name.lower(), None
            spellings[class_name.lower()].add(class_name)
        elif class_name is not None and wanted is not None:
            candidates[name] = None, NOT_LISTED
        else:
            candidates[name] = None, NO_CLASS
    if clash := next((sorted(names) for names in spellings.values() if len(names) > 1), None):
        raise ParamError("split.raw_dir", f"classes {' and '.join(map(repr, clash))} differ only by case "
                         "(one folder on Windows and macOS)", "rename one, or merge their photos into one")
    return classes, candidates


def check_classes_found(raw_dir: str | Path, classes: Sequence[str], candidates: Candidates,
                        wanted: Sequence[str] | None) -> None:
    """Raise a ParamError unless there are two classes or more, all present, each a safe folder name."""
    present = {class_name for class_name, _ in candidates.values() if class_name is not None}
    if wanted is not None and (missing := [name for name in classes if name not in present]):
        found = sorted(find_candidates(list(candidates))[0])
        raise ParamError("split.classes", f"{', '.join(missing)} not found in {raw_dir} (its classes: "
                         f"{', '.join(found) or 'none'})",
                         "list only classes that are there (folder names, or the <class> of "
                         "<class>.<n>.jpg), or set it to null to take every class found")
    if len(classes) < 2:
        unclassed = [name for name, (_, reason) in candidates.items() if reason == NO_CLASS]
        others = (f"; {len(unclassed)} file(s) match no class, e.g. {Path(raw_dir, unclassed[0])}"
                  if unclassed else "")
        raise ParamError("split.raw_dir", f"{raw_dir} has {len(classes)} class(es) "
                         f"({', '.join(classes) or 'none found'}); a classifier needs two or more{others}",
                         "give each class its photos in a sub-folder of its own (cats/, dogs/), "
                         "or name them <class>.<n>.jpg in one folder (README: Your own photos)")
    if unsafe := [name for name in classes if windows_refuses(name)]:  # data/split/<subset>/<class>/
        raise ParamError("split.raw_dir", f"class {unsafe[0]!r} in {raw_dir} cannot be a folder name on "
                         "Windows (a device name, a character it refuses, or a final dot or space)",
                         "rename that folder")


def sort_candidates(photos: FolderPhotos | ZipPhotos, classes: Sequence[str], candidates: Candidates,
                    ) -> tuple[dict[str, dict[str, str]], dict[str, list[str]], list[list[str]]]:
    """Split candidates into usable photos per class, skipped files (as reported) per reason, and
    the groups of exact duplicates.

    Returns:
        (usable, skipped, duplicates): usable maps each class to {name: the SHA-256 of its bytes},
        in the candidates' order; skipped maps each reason to the files it skipped; each group of
        duplicates lists the files (as reported) that hold the same bytes, the kept one first.

    A duplicate in its own class is kept once, the first by name; the same bytes in two classes
    are all left out. Files are copied into one folder per class under their own names, so of two
    usable files of a class with the same name (Cat/a/1.jpg, Cat/b/1.jpg) only the first is kept,
    and the other is reported, rather than one silently overwriting the other.
    """
    # Imported here: TensorFlow decodes, and the check stage reads this module without it.
    from dogs_vs_cats.images import judge_image

    def judged(item):  # (why the file is unusable, or None; the SHA-256 of its bytes)
        name, (_, reason) = item
        if refused := photos.refused(name):
            return refused, None
        if reason:
            return reason, None
        try:
            data = photos.read(name)
        except Unreadable as error:
            return str(error), None
        return judge_image(data)[1], hashlib.sha256(data).hexdigest()

    with ThreadPoolExecutor() as pool:  # TensorFlow decodes, and zlib inflates, outside the GIL
        judgements = list(pool.map(judged, candidates.items()))
    copies = defaultdict(list)  # digest -> [(name, class)] of the decodable files
    for (name, (class_name, _)), (problem, digest) in zip(candidates.items(), judgements, strict=True):
        if not problem:
            copies[digest].append((name, class_name))
    usable = {class_name: {} for class_name in classes}
    names = {class_name: set() for class_name in classes}
    skipped, duplicates = {}, []
    for (name, (class_name, _)), (problem, digest) in zip(candidates.items(), judgements, strict=True):
        file_name = PurePosixPath(name).name
        if not problem and len(copies[digest]) > 1:
            first = copies[digest][0][0]
            if name == first:
                duplicates.append([photos.path(copy) for copy, _ in copies[digest]])
            if len({copy_class for _, copy_class in copies[digest]}) > 1:
                problem = IN_TWO_CLASSES
            elif name != first:
                problem = DUPLICATE
        if not problem and file_name in names[class_name]:
            problem = "same file name as another image of its class"
        if problem:
            skipped.setdefault(problem, []).append(photos.path(name))
        else:
            usable[class_name][name] = digest
            names[class_name].add(file_name)
    return usable, skipped, duplicates


def subset_sizes(count: int, counts: Mapping[str, int | str]) -> dict[str, int]:
    """How many of a class's `count` usable photos each subset takes (train may be ALL_THE_REST)."""
    sizes = dict(counts)
    if sizes["train"] == ALL_THE_REST:
        sizes["train"] = count - sizes["validation"] - sizes["test"]
    return sizes


def select(files: Mapping[str, str], counts: Mapping[str, int | str], seed: int) -> dict[str, list[str]]:
    """Cut one class's photos, {name: SHA-256 of its bytes}, into the subsets (names, sorted).

    Each photo's place in the order is a keyed hash of (seed, its bytes), whatever the other
    photos: validation takes the lowest, test the highest, train those next above validation.
    """
    key = str(seed).encode()
    order = sorted(files, key=lambda name: hashlib.blake2b(bytes.fromhex(files[name]), key=key).digest())
    sizes = subset_sizes(len(order), counts)
    validation, train = sizes["validation"], sizes["train"]
    return {"train": sorted_names(order[validation:validation + train]),
            "validation": sorted_names(order[:validation]),
            "test": sorted_names(order[len(order) - sizes["test"]:])}


def skipped_summary(skipped: Mapping[str, list[str]]) -> str:
    """One phrase for the skipped files: how many, why, with an example of each reason."""
    if not skipped:
        return "no file was skipped"
    total = sum(len(files) for files in skipped.values())
    reasons = "; ".join(f"{len(files)} {reason}, e.g. {files[0]}" for reason, files in skipped.items())
    return f"{total} file(s) skipped: {reasons}; all listed in {SPLIT_REPORT}"


def write_report(raw_dir: str | Path, usable: Mapping[str, Sized], skipped: Mapping[str, list[str]],
                 duplicates: Sequence[list[str]] = ()) -> None:
    """data/split/report.json: the usable images per class, every skipped file and why, and the
    groups of exact duplicates (the kept one first); printed too."""
    write_json(SPLIT_REPORT, {
        "raw_dir": str(raw_dir),
        "classes": list(usable),
        "usable": {class_name: len(files) for class_name, files in usable.items()},
        "skipped": {reason: len(files) for reason, files in skipped.items()},
        "skipped_files": skipped,
        "duplicates": list(duplicates),
    })
    for reason, files in skipped.items():
        print(f"skipped {len(files)} file(s), {reason}: " + ", ".join(files[:5])
              + (", ..." if len(files) > 5 else ""))
    print(f"report: {SPLIT_REPORT}")


def class_origin(class_name: str, candidates: Candidates) -> str:
    """Where a class came from, for messages: "the folder PetImages/Cat/" or "1 file named bird.*"."""
    names = [PurePosixPath(name) for name, (found, _) in candidates.items() if found == class_name]
    folders = sorted({"/".join(path.parts[:index + 1]) for path in names
                      for index, part in enumerate(path.parts[:-1]) if part.lower() == class_name})
    if folders:
        shown = ", ".join(f"{folder}/" for folder in folders[:3]) + (", ..." if len(folders) > 3 else "")
        return f"the folder{'s' if len(folders) > 1 else ''} {shown}"
    prefixes = sorted({path.name.partition(".")[0] for path in names})
    return f"{len(names)} file{'s' if len(names) > 1 else ''} named {' or '.join(f'{p}.*' for p in prefixes)}"


def leave_out(class_name: str, classes: Sequence[str]) -> str:
    """The fix that drops a class: split.classes listing the others, when two or more remain."""
    others = [name for name in classes if name != class_name]
    if len(others) < 2:
        return ""
    return f"; or leave {class_name} out with split.classes: [{', '.join(others)}]"


def check_counts(raw_dir: str | Path, usable: Mapping[str, Sized], skipped: Mapping[str, list[str]],
                 counts: Mapping[str, int | str], candidates: Candidates) -> None:
    """Raise a ParamError when a class has no usable image, or fewer than the subsets take.

    The message says where the class came from (a folder, or file names: one stray bird.1.jpg
    among Kaggle's cats and dogs is a class of its own) and, with three classes or more, how to
    leave it out.
    """
    for class_name, files in usable.items():
        origin = f"{class_name} is {class_origin(class_name, candidates)} there"
        if not files:
            raise ParamError("split.raw_dir",
                             f"{raw_dir} has no usable {class_name} images; {origin} "
                             f"({skipped_summary(skipped)})",
                             "point split.raw_dir at a folder or .zip with one sub-folder of photos per "
                             "class (Cat/, Dog/), or at Kaggle's train/ folder (cat.1.jpg, dog.1.jpg...)"
                             + leave_out(class_name, list(usable)))
        sizes = subset_sizes(len(files), counts)
        if min(sizes.values()) < 1 or sum(sizes.values()) > len(files):
            rest = counts["train"] == ALL_THE_REST
            train = 1 if rest else counts["train"]
            needed = train + counts["validation"] + counts["test"]
            raise ParamError("split.train/validation/test",
                             f"{needed} {class_name} needed ({'at least ' if rest else ''}{train} + "
                             f"{counts['validation']} + {counts['test']}) but {raw_dir} has {len(files)} "
                             f"usable; {origin} ({skipped_summary(skipped)})",
                             "lower the per-class counts or add images" + leave_out(class_name, list(usable)))


def write_subsets(photos: FolderPhotos | ZipPhotos,
                  selections: Mapping[str, Mapping[str, list[str]]]) -> None:
    """Copy each class's selected files into data/split/<subset>/<class>/, and write the class names,
    in label order, to data/split/classes.json.

    The three subsets and classes.json are built beside the previous ones and swapped in together
    once all are complete, so that a failure (a full disk, Ctrl-C) leaves the previous split whole;
    DVC keeps it in place while split runs (`persist` in dvc.yaml), so any error of this stage does
    too.
    """
    with atomic_paths([SPLIT_DIR / subset for subset in SUBSETS] + [CLASSES_FILE]) as tmps:
        *subset_dirs, classes_file = tmps
        for subset, tmp in zip(SUBSETS, subset_dirs, strict=True):
            for class_name, selection in selections.items():
                (tmp / class_name).mkdir(parents=True)
                for name in selection[subset]:
                    photos.copy(name, tmp / class_name / PurePosixPath(name).name)
            print(f"{subset}: " + ", ".join(f"{class_name} {len(selection[subset])}"
                                            for class_name, selection in selections.items()))
        classes_file.write_text(json_text(list(selections)))
