"""dogs_vs_cats/runners.py: extract in this process or on Ray, the same features either way.

The Ray tests run `python -m stages.extract` as DVC does, on a local Ray instance (2 actors) and on
a simulated two-node cluster (ray.cluster_utils.Cluster, each actor reserving a whole node), kill
an actor while the stage runs, and point RAY_ADDRESS at nothing; they skip where Ray is not
installed (requirements-ray.txt). Each subprocess has a time limit: a pool that waits for CPUs it
will never get must fail the test, not hang it.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from archives import closed_port

from dogs_vs_cats.core.layout import CLASSES_FILE, FEATURES_DIR, SPLIT_DIR
from dogs_vs_cats.runners import LOOPBACK_ONLY, Runner, RunnerError, connect, runner_from_environment
from helpers import CLASSES, REPO, copy_project, make_raw, needs_ray, subprocess_env, write_params

LIMIT = 240  # seconds for one stage on Ray, actors' start-up included
# The simulated cluster and the stages that join it on the loopback address, as the stage's own
# local instance does (runners.LOOPBACK_ONLY): no Ray traffic to any other address of this machine.
os.environ[LOOPBACK_ONLY] = "0"


@pytest.mark.parametrize("environ, runner", [
    ({}, Runner()),
    ({"EXTRACT_RUNNER": "local", "EXTRACT_ACTORS": "7"}, Runner()),  # the actors are Ray's alone
    ({"EXTRACT_RUNNER": "Ray"}, Runner("ray")),
    ({"EXTRACT_RUNNER": "ray", "RAY_ADDRESS": "10.0.0.5:6379", "EXTRACT_ACTORS": "8",
      "EXTRACT_ACTOR_CPUS": "0.5", "EXTRACT_ACTOR_GPUS": "1"}, Runner("ray", "10.0.0.5:6379", 8, 0.5, 1.0)),
])
def test_the_environment_chooses_the_runner(environ, runner):
    assert runner_from_environment(environ) == runner


@pytest.mark.parametrize("environ, message", [
    ({"EXTRACT_RUNNER": "spark"}, "error: EXTRACT_RUNNER='spark' is not a runner. Fix: "),
    ({"EXTRACT_RUNNER": "ray", "EXTRACT_ACTORS": "1.5"}, "error: EXTRACT_ACTORS='1.5' must be a whole"),
    ({"EXTRACT_RUNNER": "ray", "EXTRACT_ACTOR_CPUS": "0"}, "error: EXTRACT_ACTOR_CPUS='0' must be a number"),
    ({"EXTRACT_RUNNER": "ray", "EXTRACT_ACTOR_GPUS": "-1"}, "error: EXTRACT_ACTOR_GPUS='-1' must be a"),
])
def test_a_bad_variable_is_one_line_naming_it(environ, message):
    with pytest.raises(RunnerError) as error:
        runner_from_environment(environ)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_ray_absent_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(RunnerError, match=r"EXTRACT_RUNNER=ray needs Ray, which is not installed\. "
                                          r"Fix: pip install -r requirements-ray\.txt"):
        connect(Runner("ray"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A project with a split train subset of 2 x 20 drawn photos, its in-process features, and a
    function that runs `python -m stages.extract train` there with more environment variables."""
    project = copy_project(tmp_path_factory.mktemp("runners"))
    for kind in CLASSES:
        for path in make_raw(project / "raw", 20, classes=(kind,)):
            target = project / SPLIT_DIR / "train" / kind / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
    (project / CLASSES_FILE).write_text(json.dumps(CLASSES))
    write_params(project, {"extract": {"batch_size": 3}})  # 14 batches, the last of 1

    def extract(**environ):
        env = dict(subprocess_env(), PYTHONPATH=str(project), **environ)
        return subprocess.Popen([sys.executable, "-m", "stages.extract", "train"], cwd=project, env=env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finished(process):
        out, err = process.communicate(timeout=LIMIT)
        return process.returncode, out, err

    def features():
        return (project / FEATURES_DIR / "train" / "features.npy").read_bytes()

    returncode, out, err = finished(extract())
    assert returncode == 0 and "in this process" in out, err
    return project, extract, finished, features, features()


def actors_while_running(process):
    """Every 50 ms while the stage `process` runs (LIMIT at most): the pids of its Ray Data actors then.

    Only the stage's own count: the actors of the test before it outlive their stage by most of a
    second, and taking them for this stage's would act on it before its Ray has even started.
    """
    deadline = time.monotonic() + LIMIT
    while process.poll() is None and time.monotonic() < deadline:
        table = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        children, actors = {}, set()
        for line in table.splitlines():
            pid, parent, *command = line.split(None, 2)
            children.setdefault(int(parent), []).append(int(pid))
            if command and "ray::MapWorker" in command[0]:  # its process title, which Ray sets
                actors.add(int(pid))
        yield actors & descendants(process.pid, children)
        time.sleep(0.05)


def descendants(root, children):
    """The pids of every process under the process `root`, given each pid's `children`."""
    found, unvisited = set(), [root]
    while unvisited:
        for child in children.get(unvisited.pop(), []):
            found.add(child)
            unvisited.append(child)
    return found


@contextlib.contextmanager
def sigint_as_in_a_terminal():
    """Processes started meanwhile take SIGINT as in a terminal's foreground job: a test process that
    ignores it (pytest started in the background by a script, as `cmd &` does) passes that on to
    its children, and a stage that ignores SIGINT cannot show what Ctrl-C does."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler: reset by exec
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def signal_state(pid):
    """The signal masks of the process `pid` (Linux's /proc), for a failure's message; "" elsewhere."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    return " ".join(line for line in status.splitlines() if line.startswith(("SigBlk", "SigIgn")))


def assert_same_features(photos, out, err):
    _, _, _, features, local = photos
    assert features() == local, f"the features differ from those made in this process:\n{out}\n{err}"


@needs_ray
@pytest.mark.slow
def test_a_local_ray_instance_with_two_actors_writes_the_same_features(photos):
    _, extract, finished, _, _ = photos
    returncode, out, err = finished(extract(EXTRACT_RUNNER="ray"))
    assert returncode == 0, err
    assert "on Ray: 2 actors (1 CPU each) on a local Ray instance" in out
    assert "Traceback" not in err and "ERROR" not in err and "core_worker" not in err, err
    assert_same_features(photos, out, err)


@needs_ray
@pytest.mark.slow
def test_an_actor_killed_mid_run_is_replaced_and_the_features_are_the_same(photos):
    _, extract, finished, _, _ = photos
    process = extract(EXTRACT_RUNNER="ray")
    seen, killed = set(), None
    for pids in actors_while_running(process):
        if pids and killed is None:
            killed = min(pids)
            os.kill(killed, signal.SIGKILL)  # as the machine's out-of-memory killer would
        seen |= pids
    returncode, out, err = finished(process)
    assert killed is not None, "no actor was seen"
    assert returncode == 0, err
    assert len(seen - {killed}) >= 2, f"the killed actor was not replaced: {seen}"  # two alive, one new
    assert_same_features(photos, out, err)


@needs_ray
@pytest.mark.slow
def test_ctrl_c_while_the_actors_work_leaves_the_old_features_and_nothing_half_written(photos):
    project, extract, finished, features, local = photos
    with sigint_as_in_a_terminal():
        process = extract(EXTRACT_RUNNER="ray")
    for pids in actors_while_running(process):
        if pids:
            break
    masks = signal_state(process.pid)  # SIGINT blocked or ignored (0x2 in a mask) would not stop it
    process.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    returncode, out, err = finished(process)
    assert returncode != 0, f"the stage's {masks}, the actors {pids}\n{out}\n{err}"
    assert features() == local
    assert [path.name for path in (project / FEATURES_DIR).iterdir()] == ["train"]  # no temporary left


@needs_ray
@pytest.mark.slow
def test_two_simulated_nodes_share_the_batches_and_write_the_same_features(photos):
    from ray.cluster_utils import Cluster

    _, extract, finished, _, _ = photos
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    address = cluster.address
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        # Each actor reserves 2 CPUs: a whole node, so the two of them run on different nodes.
        returncode, out, err = finished(extract(EXTRACT_RUNNER="ray", RAY_ADDRESS=address,
                                                EXTRACT_ACTOR_CPUS="2"))
    finally:
        cluster.shutdown()
    assert returncode == 0, err
    assert f"on the Ray cluster at {address}" in out and "computed on 2 Ray nodes" in out, out
    assert address.startswith("127.0.0.1:")
    assert_same_features(photos, out, err)


@needs_ray
@pytest.mark.slow
def test_no_cluster_at_ray_address_is_one_line_naming_it_within_a_minute(photos):
    project, extract, finished, features, local = photos
    address = f"127.0.0.1:{closed_port()}"
    start = time.monotonic()
    returncode, out, err = finished(extract(EXTRACT_RUNNER="ray", RAY_ADDRESS=address))
    assert time.monotonic() - start < 60
    assert returncode == 1 and err.strip().splitlines()[-1].startswith(
        f"error: no Ray cluster at RAY_ADDRESS={address} ("), err
    assert "unset RAY_ADDRESS to start a local Ray instance" in err and "Traceback" not in err
    assert features() == local  # what was there stays


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["local", pytest.param("ray", marks=needs_ray)])
def test_a_photo_that_does_not_decode_is_one_line_naming_it(photos, runner):
    """On a worker as in this process: the file and the fix, no traceback, the old features kept."""
    project, extract, finished, features, local = photos
    photo = sorted((project / SPLIT_DIR / "train" / "dog").iterdir())[-1]
    kept = photo.read_bytes()
    photo.write_bytes(b"This is not a picture of a dog.\n")
    try:
        returncode, out, err = finished(extract(EXTRACT_RUNNER=runner))
    finally:
        photo.write_bytes(kept)
    assert returncode == 1, out + err
    assert err.strip().splitlines()[-1] == (
        f"error: data/split/train/dog/{photo.name}: not a readable image (corrupt, truncated or not an "
        "image format extract reads). Fix: `dvc checkout data/split` puts back the photos that split "
        "chose, or `dvc repro -f -s split` chooses them again")
    assert "Traceback" not in err
    assert features() == local


def test_the_stage_names_where_it_runs_in_its_deps():
    """runners.py is a dependency of extract: the code, not the variables, that decides where it runs."""
    import yaml

    extract = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["extract"]["do"]
    assert "dogs_vs_cats/runners.py" in extract["deps"]
    assert not [param for param in extract["params"] if "runner" in param or "ray" in param]
