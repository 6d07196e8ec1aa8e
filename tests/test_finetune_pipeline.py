"""End to end: the opt-in pipeline finetune/dvc.yaml beside the main one, in a throw-away git + DVC project.

One project (module scope) is built, and `dvc repro finetune/dvc.yaml` run once, on 9 tiny images per
class with a randomly initialised VGG16 at 32x32 and one epoch per stage; each test leaves it
reproduced. Select these tests with `-m e2e`, skip them with `-m "not e2e"`.
"""

import json
import re
import subprocess
import sys

import pytest
import yaml

from helpers import (
    TEST_PARAMS,
    commit,
    copy_project,
    dvc,
    init_repository,
    make_raw,
    repro,
    run,
    subprocess_env,
    update_params,
)

pytestmark = pytest.mark.e2e

AUGMENT, FINETUNE = "finetune/dvc.yaml:augment", "finetune/dvc.yaml:finetune"
# Outputs that must come out byte for byte the same from the same params and data.
DETERMINISTIC = [f"finetune/{rung}/{name}" for rung in ("augmented", "finetuned")
                 for name in ("metrics.json", "predictions.json")]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """The project after `dvc repro finetune/dvc.yaml` alone: (project, stages run, DETERMINISTIC bytes)."""
    project = copy_project(tmp_path_factory.mktemp("finetune"))
    make_raw(project / "data/raw", 9)
    update_params(project, TEST_PARAMS)
    init_repository(project, "pipelines under test")
    ran = repro(project, "finetune/dvc.yaml")
    return project, ran, {name: (project / name).read_bytes() for name in DETERMINISTIC}


def test_the_finetune_pipeline_runs_check_split_and_its_own_stages_only(pipelines):
    project, ran, _ = pipelines
    # The page first (check depends on it), then no extract and no train: it reads the images.
    assert ran == ["page", "check", "split", AUGMENT, FINETUNE]
    for rung in ("augmented", "finetuned"):
        metrics = json.loads((project / "finetune" / rung / "metrics.json").read_text())
        assert {"loss", "accuracy", "roc_auc", "confusion"} <= set(metrics["test"])
        assert (project / "finetune" / rung / "classifier.keras").is_file()
    assert "classifier.keras" not in run(project, "git", "status", "--porcelain", "-uall")  # in the DVC cache

    lines = run(project, sys.executable, "predict.py", "--model", "finetune/finetuned/classifier.keras",
                "data/split/test").splitlines()
    assert len(lines) == 4, lines
    assert all(re.fullmatch(r"\S+\t(cat|dog)\t[01]\.\d{4}", line) for line in lines), lines


def test_top_level_repro_runs_the_main_pipeline_only(pipelines):
    project, _, _ = pipelines
    ran = repro(project)
    assert {"extract@train", "train", "plots"} <= set(ran) and not {AUGMENT, FINETUNE} & set(ran), ran
    shown = dvc(project, "metrics", "show")
    for path in ("metrics.json", "finetune/augmented/metrics.json", "finetune/finetuned/metrics.json"):
        assert re.search(rf"^{re.escape(path)}\s", shown, re.MULTILINE), shown
    plots = json.loads(dvc(project, "plots", "show", "--json"))["data"]
    for title in ("Accuracy", "Accuracy while fine-tuning", "Confusion matrix (test, fine-tuned)"):
        assert plots[title][0]["content"]["data"]["values"], title  # drawn from this project's files
    # data/dvc.yaml's download runs only for the default split.raw_dir; this project's is a folder.
    assert "up to date" in dvc(project, "status", "dvc.yaml", "finetune/dvc.yaml")


def test_a_finetune_parameter_reruns_the_finetune_stage_only(pipelines):
    project, _, _ = pipelines
    update_params(project, {"finetune": {"learning_rate": 1.0e-3}})
    assert set(repro(project)) <= {"check"}  # the main pipeline: params.yaml changed, nothing it reads
    assert "up to date" in dvc(project, "status", "dvc.yaml")
    assert FINETUNE in dvc(project, "status")  # what a clone that never ran this pipeline also sees
    assert repro(project, "finetune/dvc.yaml") == [FINETUNE]


def test_a_bad_finetune_parameter_stops_at_check_before_dvc_removes_anything(pipelines):
    project, _, _ = pipelines
    kept = {name: (project / name).read_bytes() for name in DETERMINISTIC}
    update_params(project, {"finetune": {"unfreeze": "block5_conv9"}})
    try:
        result = subprocess.run([sys.executable, "-m", "dvc", "repro", "finetune/dvc.yaml"], cwd=project,
                                env=subprocess_env(), text=True, capture_output=True)
    finally:
        update_params(project, {"finetune": {"unfreeze": TEST_PARAMS["finetune"]["unfreeze"]}})
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "finetune.unfreeze: vgg16 has no layer 'block5_conv9'" in output, output
    assert f"Running stage '{FINETUNE}'" not in output
    for name, data in kept.items():
        assert (project / name).read_bytes() == data, f"{name} was lost to a failed run"


def test_exp_run_sets_a_finetune_parameter(pipelines):
    project, _, _ = pipelines
    run(project, "git", "add", "-A")
    run(project, "git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "results")
    output = dvc(project, "exp", "run", "finetune/dvc.yaml", "-S", "finetune.epochs=2")
    assert f"Running stage '{FINETUNE}'" in output and f"Running stage '{AUGMENT}'" not in output, output
    history = project / "finetune/finetuned/dvclive/plots/metrics/eval/accuracy.tsv"
    assert len(history.read_text().splitlines()) == 1 + 2


def test_forced_repro_is_byte_identical(pipelines):
    project, _, first = pipelines
    update_params(project, {"finetune": TEST_PARAMS["finetune"]})
    ran = repro(project, "-f", "finetune/dvc.yaml")
    assert {AUGMENT, FINETUNE} <= set(ran)
    for name in DETERMINISTIC:
        assert (project / name).read_bytes() == first[name], f"{name} differs between two full runs"


def test_its_plots_are_committed_with_it_and_its_model_is_registered_by_name(pipelines):
    """Each stage wrote the dvc.yaml of its plots; `finetune:finetuned` resolves to its model by tag."""
    import dvc.api

    project, _, _ = pipelines
    for folder in ("augmented", "finetuned"):
        definitions = yaml.safe_load((project / "finetune" / folder / "dvc.yaml").read_text())
        assert definitions["metrics"] == ["metrics.json"]
        titles = [title for plot in definitions["plots"] for title in plot]
        assert len(titles) == 3 and titles[-1].startswith("Confusion matrix"), titles
    commit(project, "fine-tuned")
    run(project, "git", "tag", "-a", "finetune=finetuned@v1.0.0", "-m", "Registered")
    artifact = dvc.api.artifacts_show("finetune:finetuned", repo=str(project))
    assert artifact["path"] == "finetune/finetuned/classifier.keras"
    assert artifact["rev"] == run(project, "git", "rev-parse", "HEAD").strip()
