"""End to end: README's commands around `dvc repro`, run as README writes them, in one throw-away project.

The user's own photos (an absolute path, as README asks of queued experiments) and a local weights
file tracked with README's `dvc add` line; then "Compare branches and experiments" (a branch, `git
checkout` + `dvc checkout`, the queued grid, `dvc exp apply`) and "Share results" (a folder remote
and a bare git remote, a fresh clone, `dvc pull`, `dvc exp pull`). After every command: its exit
status, no ERROR or WARNING line from DVC, and `dvc status` up to date where the pipeline ran.
The grid keeps README's keys with two values each, and small counts (TEST_PARAMS).
"""

import json
import re
import subprocess
import sys
import time

import keras
import pytest
import yaml

from helpers import (
    TEST_PARAMS,
    copy_project,
    init_repository,
    make_raw,
    readme_blocks,
    run,
    subprocess_env,
    update_params,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WEIGHTS = "base.weights.h5"
GRID = ("'train.learning_rate=1e-5,5e-5,1e-4'", "'train.learning_rate=3e-3,1e-2'")  # README's, trimmed
UPSTREAM = ("download", "split", "quantize", "extract@")  # what no head parameter may rerun


def shell(directory, command):
    """Run one README line with bash; fail on a non-zero exit or any ERROR or WARNING that DVC printed."""
    command = command.replace("git commit", "git -c commit.gpgsign=false commit")
    result = subprocess.run(["bash", "-c", command], cwd=directory, env=subprocess_env(), text=True,
                            capture_output=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command} failed:\n{output}"
    assert not re.search(r"^(ERROR|WARNING)\b", output, re.MULTILINE), f"{command}:\n{output}"
    return output


def assert_up_to_date(directory):
    assert "Data and pipelines are up to date" in shell(directory, "dvc status")


def wait_for_queue(project, seconds=900):
    """`dvc queue status` until no task is queued or running; returns {experiment name: status}."""
    deadline = time.monotonic() + seconds
    while True:
        rows = [line.split() for line in shell(project, "dvc queue status").splitlines()]
        tasks = {row[1]: row[-1] for row in rows if len(row) >= 5 and re.fullmatch(r"[0-9a-f]{7}", row[0])}
        if tasks and not {"Queued", "Running"} & set(tasks.values()):
            return tasks
        assert time.monotonic() < deadline, f"the queue did not finish in {seconds} s: {tasks}"
        time.sleep(3)


def experiments(project):
    """{name: test accuracy} of the experiments `dvc exp show` lists, over every commit."""
    found = {}
    for commit in json.loads(shell(project, "dvc exp show -A --json")):
        for experiment in commit.get("experiments") or []:
            for rev in experiment["revs"]:
                metrics = rev["data"]["metrics"]["metrics.json"]["data"]
                found[rev["name"]] = metrics["test"]["accuracy"]
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git repository (branch main) with the pipeline, the user's photos outside it and a local
    weights file beside it, nothing reproduced yet."""
    root = tmp_path_factory.mktemp("readme")
    project = copy_project(root / "project")
    photos = root / "my-photos"
    make_raw(photos, 9, layout="folders")
    keras.utils.set_random_seed(1)  # VGG16: a random MobileNetV2's features are all but zero
    conv_base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    conv_base.save_weights(root / WEIGHTS)
    update_params(project, TEST_PARAMS)
    update_params(project, {"split": {"raw_dir": str(photos)},
                            "conv_base": {"weights": f"weights/{WEIGHTS}"}})
    run(project, "git", "init", "-q", "-b", "main")
    init_repository(project, "the project, as cloned")
    return root, project


def test_the_weights_line_tracks_the_file_with_dvc(project):
    root, project = project
    (line,) = readme_blocks("## Set up, run, test")[1]
    shell(project, line.replace("/path/to/base.weights.h5", str(root / WEIGHTS)).replace(
        "base.weights.h5", WEIGHTS))
    assert (project / "weights" / f"{WEIGHTS}.dvc").is_file()
    assert f"weights/{WEIGHTS}.dvc" in run(project, "git", "status", "--porcelain")  # git may keep it


def test_comparing_branches_ends_on_main_with_its_models_checked_out(project):
    _, project = project
    commands = readme_blocks("## Compare branches and experiments")[0]
    assert commands[-1] == "git checkout main && dvc checkout"
    for command in commands[:-1]:
        output = shell(project, command)
        if command.startswith("dvc metrics diff main"):
            row = next(line for line in output.splitlines() if "test.loss" in line)
            assert all(value != "-" for value in row.split()[2:4]), output
        if command.startswith(("dvc repro", "dvc exp run")):
            assert_up_to_date(project)
    branch_model = (project / "models/head.keras").read_bytes()
    shell(project, commands[-1])
    assert_up_to_date(project)
    assert (project / "models/head.keras").read_bytes() != branch_model  # main's
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["train"]["learning_rate"] == TEST_PARAMS["train"]["learning_rate"] != 1e-4


def test_the_queued_grid_runs_offline_with_the_tracked_weights_and_reruns_no_features(project):
    _, project = project
    queue, start, show = readme_blocks("## Compare branches and experiments")[1]
    assert queue.count(" -S ") == 2 and GRID[0] in queue and start == "dvc queue start"
    shell(project, queue.replace(*GRID))
    shell(project, start)
    tasks = wait_for_queue(project)
    assert len(tasks) == 4 and set(tasks.values()) == {"Success"}, tasks
    for name in tasks:
        log = shell(project, f"dvc queue logs {name}")
        ran = re.findall(r"Running stage '([^']+)'", log)
        assert "train" in ran and not [stage for stage in ran if stage.startswith(UPSTREAM)], (name, ran)
    assert "test.accuracy" in shell(project, show)
    assert set(tasks) <= set(experiments(project))


def test_applying_the_best_experiment_leaves_status_up_to_date(project):
    _, project = project
    found = experiments(project)
    best = max(found, key=found.get)
    shell(project, f"dvc exp apply {best}")
    assert_up_to_date(project)
    applied = json.loads((project / "metrics.json").read_text())["test"]["accuracy"]
    assert applied == found[best]
    shell(project, "git add -A && git commit -m 'Best head'")


def test_a_collaborator_clones_pulls_and_sees_the_experiments(project):
    root, project = project
    remote, bare, clone = root / "dvc-storage", root / "team.git", root / "team"  # git names the clone
    run(root, "git", "init", "-q", "--bare", "-b", "main", str(bare))
    run(project, "git", "remote", "add", "origin", str(bare))
    run(project, "git", "push", "-q", "-u", "origin", "main")  # a repository cloned from somewhere
    commands = readme_blocks("## Share results")[0]
    shell(project, commands[0].replace("/mnt/team/dvc-storage", str(remote)))
    shell(project, commands[1])
    clone_line = commands[2].replace("<repository>", str(bare)).replace("<folder>", clone.name)
    shell(root, clone_line)
    assert_up_to_date(clone)
    for name in ("models/classifier.keras", f"weights/{WEIGHTS}", "data/features/test/features.npy"):
        assert (clone / name).read_bytes() == (project / name).read_bytes(), name
    shell(clone, "dvc fetch && dvc checkout")
    lines = run(clone, sys.executable, "predict.py", "data/split/test").splitlines()
    assert len(lines) == 4 and all(line.split("\t")[1] in ("cat", "dog") for line in lines), lines
    shown = shell(clone, commands[3])
    assert set(experiments(project)) <= set(experiments(clone)), shown
