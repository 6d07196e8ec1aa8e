"""Split the raw photos into train/validation/test folders: python -m stages.split

Reads split.raw_dir (a folder or a .zip archive, read in place: one folder per class, as in
PetImages, or Kaggle's flat cat.N.jpg / dog.N.jpg), finds the classes, decodes every candidate as
extract will, and copies a stable selection of the usable ones into
data/split/{train,validation,test}/<class>/. data/split/classes.json holds the class names in label
order; data/split/report.json lists every skipped file and why (dogs_vs_cats/splitting.py).
"""

from pathlib import Path

from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.raw_photos import open_photos
from dogs_vs_cats.splitting import (
    check_classes_found,
    check_counts,
    check_split,
    find_candidates,
    select,
    sort_candidates,
    write_report,
    write_subsets,
)


def main():
    params = check_split(load_params())
    raw_dir = Path(params.raw_dir)
    photos = open_photos(raw_dir)
    classes, candidates = find_candidates(photos.names(), params.classes)
    check_classes_found(raw_dir, classes, candidates, params.classes)
    usable, skipped, duplicates = sort_candidates(photos, classes, candidates)
    write_report(raw_dir, usable, skipped, duplicates)  # first: when the split cannot be made, it says why
    check_counts(raw_dir, usable, skipped, params.counts, candidates)
    write_subsets(photos, {class_name: select(files, params.counts, params.seed)
                           for class_name, files in usable.items()})


if __name__ == "__main__":
    run_stage(main)
