"""End to end: a fresh project whose only change is where the archive comes from (127.0.0.1).

`dvc repro` with the default split.raw_dir downloads the archive (the download stage), splits it
without unpacking it, extracts and trains. One project (module scope) is built and reproduced
once; each test leaves it reproduced. With ../shared, a second project does the same on real
photos with the pretrained MobileNetV2.
"""

import hashlib
import json
import subprocess
import sys
import time

import pytest
import yaml
from archives import closed_port, petimages_zip, serving

from dogs_vs_cats.core.layout import DOWNLOAD_FILE
from dogs_vs_cats.download import partial_path
from helpers import (
    REPO,
    SHARED_PHOTOS,
    SHARED_WEIGHTS,
    TEST_PARAMS,
    copy_project,
    dvc,
    make_raw,
    merged,
    needs_shared,
    repro,
    run,
    subprocess_env,
    update_params,
)

pytestmark = pytest.mark.e2e

DOWNLOAD = "download"

REPOSITORY_PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
DEFAULT_RAW_DIR = REPOSITORY_PARAMS["split"]["raw_dir"]


def new_project(directory, archive, server, overrides=None):
    """A git + DVC project with the repository's params, small settings, and the archive's address."""
    project = copy_project(directory)
    download = {"url": server.url(), "sha256": sha256_of(archive)}
    update_params(project, merged(merged(TEST_PARAMS, {"download": download,
                                                       "split": {"raw_dir": DEFAULT_RAW_DIR}}), overrides))
    run(project, "git", "init", "-q")
    dvc(project, "init", "-q")
    run(project, "git", "add", "-A")
    run(project, "git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "fresh clone")
    return project


def failed_repro(project, *args):
    """`dvc repro` that must fail: its output."""
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", *args], cwd=project, env=subprocess_env(),
                            text=True, capture_output=True)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    """The project after a first `dvc repro` that lost the connection and a second that completed.

    300 drawn photos per class and the odd files. Returns a dict: project, server, the first run's
    output, what the first run left in data/ and what `git add -A` staged then, the stages the
    second run ran.
    """
    archive = petimages_zip(300)
    with serving(archive, drop_after=100_000) as server:
        project = new_project(tmp_path_factory.mktemp("download"), archive, server)
        first = failed_repro(project)
        left = sorted(path.name for path in (project / DOWNLOAD_FILE.parent).iterdir())
        partial_size = (project / partial_path(DOWNLOAD_FILE, sha256_of(archive))).stat().st_size
        run(project, "git", "add", "-A")
        staged = run(project, "git", "diff", "--cached", "--name-only").splitlines()
        yield {"project": project, "server": server, "first": first, "left": left,
               "partial_size": partial_size, "staged": staged, "ran": repro(project)}


def test_a_lost_connection_leaves_nothing_that_looks_complete(downloaded):
    assert "error: cannot download" in downloaded["first"]
    assert "run the same command again to resume" in downloaded["first"]
    assert DOWNLOAD_FILE.name not in downloaded["left"] and downloaded["partial_size"] == 100_000
    assert not [name for name in downloaded["staged"] if "photos.zip" in name], downloaded["staged"]


def test_the_next_repro_resumes_then_splits_extracts_and_trains(downloaded):
    project, server, ran = downloaded["project"], downloaded["server"], downloaded["ran"]
    assert server.requests[1][1] == "bytes=100000-"  # asked for the rest only
    assert ran[:2] == [DOWNLOAD, "split"] and "train" in ran and "plots" in ran
    assert (project / DOWNLOAD_FILE).read_bytes() == server.data
    assert not partial_files(project)
    assert json.loads((project / "metrics.json").read_text())["test"]["accuracy"] >= 0
    report = json.loads((project / "data/split/report.json").read_text())
    assert report["usable"] == {"cat": 300, "dog": 300}
    assert report["skipped_files"] == {
        "empty file": ["data/download/photos.zip/PetImages/Cat/0.jpg"],
        "not a readable image (corrupt, truncated or not an image format extract reads)":
            ["data/download/photos.zip/PetImages/Dog/0.jpg",
             "data/download/photos.zip/PetImages/Dog/Thumbs.db"],
        "name matches no class": ["data/download/photos.zip/readme[1].txt"]}


def test_the_archive_is_cached_by_dvc_and_ignored_by_git(downloaded):
    project, server = downloaded["project"], downloaded["server"]
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    out = lock["stages"]["download"]["outs"][0]
    assert out["path"] == str(DOWNLOAD_FILE.parent) and out["nfiles"] == 1
    md5 = hashlib.md5(server.data).hexdigest()
    assert (project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).is_file()
    run(project, "git", "check-ignore", "-q", str(DOWNLOAD_FILE))
    requests = len(server.requests)
    assert repro(project) == [] and len(server.requests) == requests  # nothing downloaded again


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def partial_files(project):
    return list((project / DOWNLOAD_FILE.parent).glob(".*.part"))


def up_to_date_again(project, server):
    """After a failed run with other download params, the archive that was there serves again."""
    requests = len(server.requests)
    repro(project)
    assert (project / DOWNLOAD_FILE).read_bytes() == server.data and len(server.requests) == requests
    assert "up to date" in dvc(project, "status", "dvc.yaml")


def test_a_change_to_its_code_reruns_the_stage_but_fetches_nothing(downloaded):
    """The archive persists (dvc.yaml): a file with the right SHA-256 is kept, and split,
    whose dependency did not change, does not rerun."""
    project, server = downloaded["project"], downloaded["server"]
    module = project / "dogs_vs_cats/download.py"
    original = module.read_text()
    requests = len(server.requests)
    module.write_text(original + "\n# an edit that changes nothing\n")
    try:
        ran = repro(project)  # check too, which imports the module; its output does not change
        assert DOWNLOAD in ran and "split" not in ran and len(server.requests) == requests, ran
    finally:
        module.write_text(original)
    ran = repro(project)
    assert DOWNLOAD in ran and "split" not in ran and len(server.requests) == requests, ran


def test_a_wrong_checksum_is_one_line_naming_it(downloaded):
    project, server = downloaded["project"], downloaded["server"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    try:
        update_params(project, {"download": {"sha256": "ab" * 32}})
        output = failed_repro(project)
        assert (f"error: params.yaml download.sha256: {params['download']['url']} gave a file whose SHA-256 "
                f"is {sha256_of(server.data)}, not {'ab' * 32}; it was removed") in output
        # The bad download is gone; the archive of the last good run stays (dvc.lock describes it).
        assert not partial_files(project) and (project / DOWNLOAD_FILE).read_bytes() == server.data
    finally:
        update_params(project, {"download": params["download"]})
    up_to_date_again(project, server)


def test_no_server_is_the_offline_message_within_two_minutes(downloaded):
    project, server = downloaded["project"], downloaded["server"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    url = f"http://127.0.0.1:{closed_port()}/photos.zip"
    start = time.monotonic()
    try:
        update_params(project, {"download": {"url": url, "sha256": "cd" * 32}})  # another archive
        output = failed_repro(project)
    finally:
        update_params(project, {"download": params["download"]})
    assert time.monotonic() - start < 120
    assert (f"error: cannot download {url}: " in output
            and "Offline? put the photos in a folder and set split.raw_dir (README: Data)" in output)
    up_to_date_again(project, server)


def test_a_folder_in_raw_dir_never_downloads_and_leaves_every_dvc_command_clean(downloaded):
    """The download stage runs and fetches nothing; the archive fetched before stays for a switch back."""
    project, server = downloaded["project"], downloaded["server"]
    make_raw(project / "mine", 9)
    requests = len(server.requests)
    update_params(project, {"split": {"raw_dir": "mine"}, "download": {"url": "http://127.0.0.1:9/x.zip"}})
    ran = repro(project)
    assert DOWNLOAD in ran and "split" in ran and len(server.requests) == requests
    assert (project / DOWNLOAD_FILE).read_bytes() == server.data
    assert "Data and pipelines are up to date" in dvc(project, "status")
    (project / "models/classifier.keras").unlink()
    result = subprocess.run([sys.executable, "-m", "dvc", "checkout"], cwd=project, env=subprocess_env(),
                            text=True, capture_output=True)
    assert result.returncode == 0 and "ERROR" not in result.stderr and "WARNING" not in result.stderr, result
    assert (project / "models/classifier.keras").is_file()


@needs_shared
def test_real_photos_downloaded_reach_095_with_the_pretrained_base(tmp_path):
    """300 Kaggle photos per class in the PetImages layout; 200/50/50 per class; MobileNetV2 at 160."""
    photos = {folder: [(SHARED_PHOTOS / f"{kind}.{i}.jpg").read_bytes() for i in range(1, 301)]
              for folder, kind in (("Cat", "cat"), ("Dog", "dog"))}
    archive = petimages_zip(300, photos=photos)
    with serving(archive) as server:
        project = new_project(tmp_path / "project", archive, server, {
            "split": {"train": "rest", "validation": 50, "test": 50},
            "conv_base": {"name": "mobilenet_v2", "weights": "weights/pretrained.weights.h5",
                          "input_size": 160},
            "train": REPOSITORY_PARAMS["train"]})  # the recipe's head and training
        (project / "weights/pretrained.weights.h5").symlink_to(SHARED_WEIGHTS)  # not copied
        ran = repro(project)
    assert [name for name in ran if name != "check_model"][:4] == ["page", "check", DOWNLOAD, "split"]
    assert ran.index("check") < ran.index("check_model") < ran.index("extract@train")
    metrics = json.loads((project / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.95, metrics
