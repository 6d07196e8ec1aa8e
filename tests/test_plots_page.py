"""End to end: the page of `dvc plots show` / `dvc plots diff` in a real browser with no network, and
the classifier in DVC's model registry (`artifacts:` in dvc.yaml, `dvc artifacts get`).

One project (module scope): the main pipeline reproduced and committed twice (two epoch counts),
as a user would before `dvc plots diff`. The finetune pipeline never runs here.
"""

import json
import re
import subprocess
import sys

import pytest
import yaml

from browser import chart_id, dump_dom, needs_browser, rendered_charts
from helpers import (
    REPO,
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


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("page"))
    make_raw(project / "data/raw", 9)
    update_params(project, TEST_PARAMS)
    init_repository(project, "pipeline")
    repro(project)
    commit(project, "first run")
    update_params(project, {"train": {"epochs": 3}})
    repro(project)
    commit(project, "three epochs")
    return project


def plots(project, *args):
    """Run `dvc plots <args>`: (its output, stdout and stderr together)."""
    result = subprocess.run([sys.executable, "-m", "dvc", "plots", *args], cwd=project,
                            env=subprocess_env(), text=True, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def vega_charts():
    """The ids of the charts that dvc.yaml defines with a Vega template (the others are images)."""
    definitions = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    return {chart_id(title) for plot in definitions if isinstance(plot, dict) for title in plot}


def test_dvc_plots_show_after_repro_prints_no_warning(project):
    output = plots(project, "show")
    assert "failed to load" not in output and "WARNING" not in output, output


def test_dvc_metrics_show_and_diff_print_no_warning_either(project):
    """The finetune pipeline's metrics, like its plots, are declared only once it has run."""
    for command in (["show"], ["diff", "HEAD~1"]):
        result = subprocess.run([sys.executable, "-m", "dvc", "metrics", *command], cwd=project,
                                env=subprocess_env(), text=True, capture_output=True)
        assert result.returncode == 0 and "failed to load" not in result.stdout + result.stderr, result
        assert "metrics.json" in result.stdout


def test_the_page_inlines_the_vega_libraries(project):
    plots(project, "show")
    page = (project / "dvc_plots/index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src=" not in page
    assert "window.vegaEmbed=" in page


@needs_browser
@pytest.mark.parametrize("command", [["show"], ["diff", "HEAD~1"]])
def test_every_chart_renders_offline(project, tmp_path, command):
    plots(project, *command, "-o", str(tmp_path))
    drawn = rendered_charts(tmp_path / "index.html")
    assert drawn == {chart: True for chart in vega_charts()}


@needs_browser
def test_the_page_shows_what_the_model_saw_and_the_labels_that_look_wrong(project, tmp_path):
    """The two galleries are images on the page, beside the charts: DVC copies each into static/."""
    plots(project, "show", "-o", str(tmp_path))
    shown = re.findall(r'<img src="([^"]+)"', dump_dom(tmp_path / "index.html"))
    for name in ("heatmaps.jpg", "label_issues.jpg"):
        (source,) = [src for src in shown if src.endswith(name)]
        assert (tmp_path / source).read_bytes() == (project / "plots" / name).read_bytes()


@needs_browser
def test_a_chart_whose_data_is_gone_is_caught(project, tmp_path):
    """The browser check can fail: without eval/roc.json, the page lacks that one chart."""
    roc = project / "eval/roc.json"
    saved = roc.read_bytes()
    roc.unlink()
    try:
        subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", str(tmp_path)], cwd=project,
                       env=subprocess_env(), capture_output=True)
        drawn = rendered_charts(tmp_path / "index.html")
    finally:
        roc.write_bytes(saved)
    assert {chart for chart, ok in drawn.items() if not ok} | (vega_charts() - set(drawn)) == {"ROC__test_"}


def test_a_registered_classifier_version_is_fetched_by_name(project, tmp_path):
    """dvc push to a local remote, a git tag classifier@v1.0.0, then `dvc artifacts get` elsewhere."""
    dvc(project, "remote", "add", "-d", "storage", str(tmp_path / "remote"))  # the team's remote
    commit(project, "A DVC remote")
    dvc(project, "push")
    run(project, "git", "tag", "-a", "classifier@v1.0.0", "-m", "Registered: classifier v1.0.0")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dvc(elsewhere, "artifacts", "get", str(project), "classifier")
    model = elsewhere / "classifier.keras"
    assert model.is_file()
    photo = next((project / "data/split/test/dog").iterdir())
    printed = run(elsewhere, sys.executable, str(project / "predict.py"), str(photo), "--model", str(model))
    path, label, probability = printed.split("\t")
    assert path == str(photo) and label in json.loads((project / "data/split/classes.json").read_text())
