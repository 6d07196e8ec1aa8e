"""End to end: augment and finetune switched on (finetune.enabled), in a throw-away git + DVC project.

One project (module scope) is built, and `dvc repro` run once, on 9 tiny images per class with a
randomly initialised VGG16 at 32x32 and one epoch per stage; each test leaves it reproduced.
Select these tests with `-m e2e`, skip them with `-m "not e2e"`.
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

AUGMENT, FINETUNE = "augment", "finetune"
ON = {"finetune": {"enabled": True}}
# Outputs that must come out byte for byte the same from the same params and data.
DETERMINISTIC = [f"finetune/{rung}/results/{name}" for rung in ("augmented", "finetuned")
                 for name in ("metrics.json", "predictions.json")]
DETERMINISTIC.append("finetune/finetuned/heatmaps/heatmaps.jpg")  # the heatmaps stage's


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """After `dvc repro` with finetune.enabled: true: (project, stages run, DETERMINISTIC bytes)."""
    project = copy_project(tmp_path_factory.mktemp("finetune"))
    make_raw(project / "data/raw", 9)
    update_params(project, TEST_PARAMS)
    update_params(project, ON)
    init_repository(project, "pipelines under test")
    ran = repro(project)
    return project, ran, {name: (project / name).read_bytes() for name in DETERMINISTIC}


def test_switched_on_repro_trains_augment_and_finetune_after_the_main_pipeline(pipelines):
    project, ran, _ = pipelines
    assert {"train", AUGMENT, FINETUNE} <= set(ran) and ran.index(AUGMENT) < ran.index(FINETUNE), ran
    for rung in ("augmented", "finetuned"):
        metrics = json.loads((project / "finetune" / rung / "results/metrics.json").read_text())
        assert {"loss", "accuracy", "roc_auc", "confusion"} <= set(metrics["test"])
        model = [path.name for path in (project / "finetune" / rung / "model").iterdir()]
        assert model == ["classifier.keras"]
    assert "classifier.keras" not in run(project, "git", "status", "--porcelain", "-uall")  # in the DVC cache
    assert "Data and pipelines are up to date" in dvc(project, "status")

    lines = run(project, sys.executable, "predict.py", "--model", "finetune/finetuned/model/classifier.keras",
                "data/split/test").splitlines()
    assert len(lines) == 4, lines
    assert all(re.fullmatch(r"\S+\t(cat|dog)\t[01]\.\d{4}", line) for line in lines), lines


def test_metrics_and_plots_show_all_three_models(pipelines):
    project, _, _ = pipelines
    shown = dvc(project, "metrics", "show")
    for path in ("metrics.json", "finetune/augmented/results/metrics.json",
                 "finetune/finetuned/results/metrics.json"):
        assert re.search(rf"^{re.escape(path)}\s", shown, re.MULTILINE), shown
    plots = json.loads(dvc(project, "plots", "show", "--json"))["data"]
    for title in ("Accuracy", "Accuracy while fine-tuning", "Confusion matrix (test, fine-tuned)"):
        assert plots[title][0]["content"]["data"]["values"], title  # drawn from this project's files


def test_a_finetune_parameter_reruns_the_finetune_stage_only(pipelines):
    project, _, _ = pipelines
    update_params(project, {"finetune": {"learning_rate": 1.0e-3}})
    # check: params.yaml changed; heatmaps draws the new fine-tuned model (and never trains one)
    assert repro(project) == ["check", FINETUNE, "heatmaps"]
    assert "up to date" in dvc(project, "status")


def test_a_bad_finetune_parameter_stops_at_check_before_dvc_removes_anything(pipelines):
    project, _, _ = pipelines
    kept = {name: (project / name).read_bytes() for name in DETERMINISTIC}
    update_params(project, {"finetune": {"unfreeze": "block5_conv9"}})
    try:
        result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project,
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
    commit(project, "results")
    output = dvc(project, "exp", "run", "-S", "finetune.epochs=2")
    assert f"Running stage '{FINETUNE}'" in output and f"Running stage '{AUGMENT}'" not in output, output
    history = project / "finetune/finetuned/results/dvclive/plots/metrics/eval/accuracy.tsv"
    assert len(history.read_text().splitlines()) == 1 + 2


def test_forced_repro_is_byte_identical(pipelines):
    project, _, first = pipelines
    update_params(project, {"finetune": TEST_PARAMS["finetune"]})
    update_params(project, ON)
    ran = repro(project, "-f")
    assert {AUGMENT, FINETUNE} <= set(ran)
    for name in DETERMINISTIC:
        assert (project / name).read_bytes() == first[name], f"{name} differs between two full runs"


def test_its_plots_are_committed_with_it_and_its_model_is_registered_by_name(pipelines):
    """Each stage wrote the dvc.yaml of its plots; `finetuned` resolves to its model by tag."""
    import dvc.api

    project, _, _ = pipelines
    for folder in ("augmented", "finetuned"):
        definitions = yaml.safe_load((project / "finetune" / folder / "dvc.yaml").read_text())
        assert definitions["metrics"] == ["results/metrics.json"]
        titles = [title for plot in definitions["plots"] if isinstance(plot, dict) for title in plot]
        assert len(titles) == 3 and titles[-1].startswith("Confusion matrix"), titles
    # What the fine-tuned model saw: drawn by the heatmaps stage, listed by finetune's dvc.yaml.
    assert definitions["plots"][-1] == "heatmaps/heatmaps.jpg"
    assert (project / "finetune/finetuned/heatmaps/heatmaps.jpg").stat().st_size > 10_000
    commit(project, "fine-tuned")
    run(project, "git", "tag", "-a", "finetuned@v1.0.0", "-m", "Registered")
    artifact = dvc.api.artifacts_show("finetuned", repo=str(project))
    assert artifact["path"] == "finetune/finetuned/model/classifier.keras"
    assert artifact["rev"] == run(project, "git", "rev-parse", "HEAD").strip()


def test_switched_off_again_nothing_of_it_is_shown_and_every_command_is_clean(pipelines):
    """Off: both stages rerun in a fraction of a second, leave notes, and DVC warns about nothing."""
    project, _, _ = pipelines
    update_params(project, {"finetune": {"enabled": False}})
    assert repro(project) == ["check", AUGMENT, FINETUNE, "heatmaps"]  # heatmaps: its note
    for folder in ("augmented", "finetuned"):
        assert not (project / "finetune" / folder / "dvc.yaml").exists()
    assert [path.name for path in (project / "finetune/finetuned/heatmaps").iterdir()] == ["off.txt"]
    for command in (["status"], ["metrics", "show"], ["plots", "show", "--json"], ["checkout"]):
        result = subprocess.run([sys.executable, "-m", "dvc", *command], cwd=project, env=subprocess_env(),
                                text=True, capture_output=True)
        assert result.returncode == 0 and not re.search(r"ERROR|WARNING", result.stderr), (command, result)
    assert "finetune/" not in dvc(project, "metrics", "show")
    update_params(project, ON)
    assert set(repro(project)) == {"check", AUGMENT, FINETUNE, "heatmaps"}  # on again: trained again
