"""Download the photos' archive: python -m stages.download

When split.raw_dir is data/download/photos.zip (the default), fetches download.url there
(DVC-cached: `dvc push` shares it, and a collaborator's `dvc pull` never downloads it again), with
a progress bar, resuming an interrupted download, and keeps it only if its SHA-256 is
download.sha256 (dogs_vs_cats/download.py); split then reads the archive in place. With photos of
the user's own, it fetches nothing and writes a note saying so (an archive fetched before stays,
for a switch back). Every `dvc repro` runs this stage, so that `dvc status`, `dvc checkout` and
`dvc pull` find its output whichever photos were chosen.
"""

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import DOWNLOAD_FILE, NOT_DOWNLOADED
from dogs_vs_cats.core.params import load_params
from dogs_vs_cats.download import download, downloads_photos


def main():
    params = load_params()
    source = params.download
    if not downloads_photos(params):
        # A note, not an empty folder (which DVC warns about); the same whichever photos are chosen.
        with atomic_path(NOT_DOWNLOADED) as tmp:
            tmp.write_text(f"split.raw_dir names photos of your own: the download stage fetches nothing "
                           f"(an archive it fetched before stays). Set it to {DOWNLOAD_FILE} to "
                           "download download.url here.\n")
        print(f"nothing to download: split.raw_dir is {params.split.raw_dir}, "
              f"not {DOWNLOAD_FILE}")
        return
    NOT_DOWNLOADED.unlink(missing_ok=True)
    print(f"downloading {source.url} to {DOWNLOAD_FILE}")
    download(source.url, source.sha256.lower(), DOWNLOAD_FILE)
    print(f"{DOWNLOAD_FILE}: {DOWNLOAD_FILE.stat().st_size:,} bytes, SHA-256 checked")


if __name__ == "__main__":
    run_stage(main)
