"""dogs_vs_cats/download.py: the archive fetched from a server on 127.0.0.1, checked, resumable."""

import collections
import hashlib
import shutil
import subprocess
import time

import pytest
from archives import closed_port, petimages_zip, serving, silent_port

from dogs_vs_cats import download as download_module
from dogs_vs_cats.core.atomic import DiskFull
from dogs_vs_cats.core.params import ParamError, Params
from dogs_vs_cats.download import DownloadError, download, partial_path
from helpers import REPO, TEST_PARAMS, merged

# What shutil.disk_usage returns (a named tuple), with the free space a test sets.
DiskUsage = collections.namedtuple("DiskUsage", "total used free")

ARCHIVE = petimages_zip(20)
SHA256 = hashlib.sha256(ARCHIVE).hexdigest()


@pytest.fixture
def out(tmp_path, monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return tmp_path / "data" / "photos.zip"


def file_names(path):
    """The names in the folder of `path`."""
    return sorted(p.name for p in path.parent.iterdir()) if path.parent.exists() else []


def test_downloads_the_archive_and_shows_progress(out, capsys):
    with serving(ARCHIVE) as server:
        download(server.url(), SHA256, out)
    assert out.read_bytes() == ARCHIVE and file_names(out) == ["photos.zip"]
    progress = capsys.readouterr().err
    assert "photos.zip" in progress and "100%" in progress and "B/s" in progress


def test_a_wrong_checksum_names_the_parameter_and_keeps_nothing(out):
    wrong = "ab" * 32
    with serving(ARCHIVE) as server, pytest.raises(ParamError) as error:
        download(server.url(), wrong, out)
    message = str(error.value)
    assert "download.sha256" in message and SHA256 in message and wrong in message and "\n" not in message
    assert list(out.parent.iterdir()) == []


def test_a_dropped_connection_keeps_the_partial_file_and_the_next_run_resumes(out):
    with serving(ARCHIVE, drop_after=1000) as server:
        with pytest.raises(DownloadError, match="connection broke|sent 1,000 of"):
            download(server.url(), SHA256, out)
        assert not out.exists() and partial_path(out, SHA256).stat().st_size == 1000
        download(server.url(), SHA256, out)
    assert server.requests[-1][1] == "bytes=1000-"  # asked for the rest only
    assert out.read_bytes() == ARCHIVE and file_names(out) == ["photos.zip"]


def test_a_server_without_ranges_makes_it_start_again(out):
    with serving(ARCHIVE, drop_after=1000, ranges=False) as server:
        with pytest.raises(DownloadError):
            download(server.url(), SHA256, out)
        download(server.url(), SHA256, out)
    assert out.read_bytes() == ARCHIVE and file_names(out) == ["photos.zip"]


def test_a_partial_file_longer_than_the_archive_is_replaced(out):
    out.parent.mkdir(parents=True)
    partial_path(out, SHA256).write_bytes(b"x" * (len(ARCHIVE) + 10))  # the server answers 416
    with serving(ARCHIVE) as server:
        download(server.url(), SHA256, out)
    assert out.read_bytes() == ARCHIVE


def test_a_complete_partial_file_is_checked_not_fetched_again(out):
    """Killed between the last byte and the rename: the server has nothing more (416)."""
    out.parent.mkdir(parents=True)
    partial_path(out, SHA256).write_bytes(ARCHIVE)
    with serving(ARCHIVE) as server:
        download(server.url(), SHA256, out)
    assert server.requests == [("/photos.zip", f"bytes={len(ARCHIVE)}-")]
    assert out.read_bytes() == ARCHIVE and file_names(out) == ["photos.zip"]


def test_a_range_other_than_the_one_asked_for_starts_again(out):
    with serving(ARCHIVE, drop_after=1000, wrong_range=True) as server:
        with pytest.raises(DownloadError):
            download(server.url(), SHA256, out)
        download(server.url(), SHA256, out)
    assert [range_ for _, range_ in server.requests] == [None, "bytes=1000-", None]
    assert out.read_bytes() == ARCHIVE


def test_the_file_already_there_is_kept_and_another_sha256_s_bytes_removed(out):
    """The output persists across reruns (dvc.yaml): code changes never fetch 800 MB again."""
    out.parent.mkdir(parents=True)
    out.write_bytes(ARCHIVE)
    stale = partial_path(out, "ab" * 32)
    stale.write_bytes(b"half of another archive")
    with serving(ARCHIVE) as server:
        download(server.url(), SHA256, out)
        assert server.requests == [] and stale.exists()  # nothing fetched, nothing touched
        other = petimages_zip(3)
        download(server.url(), SHA256, out)
        server.data = other
        download(server.url(), hashlib.sha256(other).hexdigest(), out)
    assert out.read_bytes() == other and file_names(out) == ["photos.zip"]


def test_a_wrong_checksum_keeps_the_file_that_was_there(out):
    out.parent.mkdir(parents=True)
    out.write_bytes(ARCHIVE)
    with serving(petimages_zip(3)) as server, pytest.raises(ParamError, match="download.sha256"):
        download(server.url(), "ab" * 32, out)
    assert out.read_bytes() == ARCHIVE and file_names(out) == ["photos.zip"]


def test_an_http_error_points_at_the_address(out):
    with serving(ARCHIVE) as server, pytest.raises(DownloadError) as error:
        download(server.url("missing.zip"), SHA256, out)
    assert "HTTP 404" in str(error.value) and "Check download.url" in str(error.value)
    assert file_names(out) == []


def test_no_server_is_one_line_that_says_what_to_do_offline(out):
    url = f"http://127.0.0.1:{closed_port()}/photos.zip"
    with pytest.raises(DownloadError) as error:
        download(url, SHA256, out)
    message = str(error.value)
    assert message.startswith(f"error: cannot download {url}: ") and "\n" not in message
    assert "Offline? put the photos in a folder and set split.raw_dir (README: Data)" in message
    assert not out.exists() and not partial_path(out, SHA256).exists()


def test_a_silent_server_times_out(out, monkeypatch):
    monkeypatch.setattr(download_module, "TIMEOUT", 1)  # 60 s in use: well within two minutes
    with silent_port() as port:
        start = time.monotonic()
        with pytest.raises(DownloadError, match="timed out"):
            download(f"http://127.0.0.1:{port}/photos.zip", SHA256, out)
    assert time.monotonic() - start < 10


def test_too_little_disk_space_is_said_before_any_byte_is_written(out, monkeypatch):
    usage = DiskUsage(total=10**9, used=10**9 - 100, free=100)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)
    with serving(ARCHIVE) as server, pytest.raises(DiskFull, match="no space left for .*photos.zip"):
        download(server.url(), SHA256, out)
    assert not out.exists() and not partial_path(out, SHA256).exists()


def test_the_proxy_variables_are_honoured(out, monkeypatch):
    """The request goes to the proxy (our server), never to the archive's own host."""
    with serving(ARCHIVE) as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("no_proxy")
        download("http://photos.example.invalid/archive.zip", SHA256, out)
    assert proxy.requests == [("http://photos.example.invalid/archive.zip", None)]
    assert out.read_bytes() == ARCHIVE


def test_git_ignores_a_download_in_progress():
    """`git add -A` after a crash never stages the partial file."""
    partial = partial_path(REPO / "data" / "photos.zip", SHA256)
    result = subprocess.run(["git", "check-ignore", "-q", str(partial)], cwd=REPO)
    assert result.returncode == 0


@pytest.mark.parametrize("download_params, named", [
    ({"url": "ftp://example.com/a.zip"}, "download.url"),
    ({"url": None}, "download.url"),
    ({"sha256": "abc"}, "download.sha256"),
    ({"sha256": "g" * 64}, "download.sha256"),
])
def test_bad_parameters_are_named(download_params, named):
    with pytest.raises(ParamError, match=named.replace(".", r"\.")):
        _ = Params(merged(TEST_PARAMS, {"download": download_params})).download


def test_the_default_parameters_are_the_published_archive():
    from dogs_vs_cats.core.params import load_params

    source = load_params(REPO / "params.yaml").download
    url, sha256 = source.url, source.sha256
    assert url.endswith("/kagglecatsanddogs_5340.zip") and url.startswith("https://download.microsoft.com/")
    assert sha256 == "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"
