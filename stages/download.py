"""Download the photos' archive: python -m stages.download

Fetches download.url to data/photos.zip (DVC-cached: `dvc push` shares it, and a collaborator's
`dvc pull` never downloads it again), with a progress bar, resuming an interrupted download, and
keeps it only if its SHA-256 is download.sha256 (dogs_vs_cats/download.py). It runs only when
split.raw_dir is data/photos.zip (data/dvc.yaml): split then reads the archive in place.
"""

from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import DOWNLOAD_FILE
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.download import check_download, download


def main():
    url, sha256 = check_download(load_params())
    print(f"downloading {url} to {DOWNLOAD_FILE}")
    download(url, sha256, DOWNLOAD_FILE)
    print(f"{DOWNLOAD_FILE}: {DOWNLOAD_FILE.stat().st_size:,} bytes, SHA-256 checked")


if __name__ == "__main__":
    run_stage(main)
