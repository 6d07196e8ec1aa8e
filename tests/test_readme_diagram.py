"""README's pipeline diagram (the mermaid block under "## The pipeline") is the DAG that `dvc dag` shows.

Every stage of every dvc.yaml is a node, and the diagram's edges are exactly `dvc dag --dot`'s. A node
may stand for a foreach group: the label `extract@{train,validation,test}` is the three stages
extract@train, extract@validation and extract@test. The diagram's syntax: `flowchart TD`, chains
(`a-->b-->c`), `&` (`a-->b & c`), node labels (`E["..."]`); anything else fails the test, so that
nothing in the block is silently ignored. No TensorFlow: part of the quick loop.
"""

import itertools
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from helpers import REPO, subprocess_env

NODE = re.compile(r'(?P<id>\w[\w@.-]*)(?:\["(?P<quoted>[^"]*)"\]|\[(?P<plain>[^\]"]*)\])?')
GROUP = re.compile(r"(?P<stage>[^@{}]+)@\{(?P<items>[^{}]+)\}")


def readme_diagram(text):
    """The mermaid block of README's "## The pipeline" section, as its lines."""
    section = text.split("\n## The pipeline\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```mermaid\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, "README's section The pipeline should hold one mermaid block"
    return blocks[0].splitlines()


def stages_of(label):
    """The stages a node's label names: `extract@{train,test}` is extract@train and extract@test."""
    group = GROUP.fullmatch(label)
    if group is None:
        return [label]
    return [f"{group['stage']}@{item.strip()}" for item in group["items"].split(",")]


def mermaid_graph(lines):
    """(stages, edges) that a mermaid flowchart draws, foreach groups expanded to their stages."""
    content = [line.strip() for line in lines if line.strip() and not line.strip().startswith("%%")]
    assert content and re.fullmatch(r"flowchart TD", content[0]), f"not a `flowchart TD`: {content[:1]}"
    labels, chains = {}, []
    for line in content[1:]:
        chain = []
        for part in line.split("-->"):
            ids = []
            for item in part.split("&"):
                node = NODE.fullmatch(item.strip())
                assert node, f"cannot read {item.strip()!r} in the diagram's line {line!r}"
                label = node["quoted"] if node["quoted"] is not None else node["plain"]
                if label is not None:
                    assert labels.get(node["id"], label) == label, f"two labels for {node['id']}"
                    labels[node["id"]] = label
                ids.append(node["id"])
            chain.append(ids)
        chains.append(chain)
    expand = {node: stages_of(labels.get(node, node)) for chain in chains for ids in chain for node in ids}
    stages = {stage for named in expand.values() for stage in named}
    edges = set()
    for chain in chains:
        for sources, targets in itertools.pairwise(chain):
            for source, target in itertools.product(sources, targets):
                edges.update(itertools.product(expand[source], expand[target]))
    return stages, edges


def dvc_dag(project):
    """(stages, edges) of `dvc dag --dot` in `project`: every stage of its dvc.yaml files."""
    result = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot"], cwd=project, env=subprocess_env(),
                            text=True, capture_output=True, timeout=120)
    assert result.returncode == 0, f"dvc dag failed:\n{result.stdout}{result.stderr}"
    lines = [line.strip() for line in result.stdout.splitlines()]
    edges = {edge for line in lines for edge in re.findall(r'^"([^"]+)" -> "([^"]+)";$', line)}
    stages = {name for line in lines for name in re.findall(r'^"([^"]+)";$', line)}
    assert stages, f"no stage in dvc dag's output:\n{result.stdout}"
    return stages | {stage for edge in edges for stage in edge}, edges


def differences(diagram, dag):
    """What the diagram lacks or adds against the DAG, one line each; [] where they are the same."""
    (drawn_stages, drawn_edges), (stages, edges) = diagram, dag
    return ([f"stage {stage} is not in the diagram" for stage in sorted(stages - drawn_stages)]
            + [f"the diagram has {stage}, which no dvc.yaml has" for stage in sorted(drawn_stages - stages)]
            + [f"edge {a} --> {b} is not in the diagram" for a, b in sorted(edges - drawn_edges)]
            + [f"the diagram has {a} --> {b}, which dvc dag has not" for a, b in sorted(drawn_edges - edges)])


@pytest.fixture(scope="module")
def dag():
    return dvc_dag(REPO)


@pytest.fixture(scope="module")
def diagram():
    return mermaid_graph(readme_diagram((REPO / "README.md").read_text()))


def test_the_readme_diagram_is_dvc_dag(diagram, dag):
    assert differences(diagram, dag) == []


def test_the_diagram_syntax_is_read_as_mermaid_draws_it():
    lines = ["flowchart TD", "  %% a comment", '\ta-->b & c-->d', '\tE["x@{1, 2}"]-->a', "\tE-->f[F]", "\tg"]
    stages, edges = mermaid_graph(lines)
    assert stages == {"a", "b", "c", "d", "x@1", "x@2", "F", "g"}
    assert edges == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("x@1", "a"), ("x@2", "a"),
                     ("x@1", "F"), ("x@2", "F")}


def test_an_edge_missing_from_the_diagram_is_found(dag):
    stages, edges = dag
    ids = {stage: f"n{number}" for number, stage in enumerate(sorted(stages))}
    nodes = [f'\t{ids[stage]}["{stage}"]' for stage in sorted(stages)]
    for missing in sorted(edges):
        lines = ["flowchart TD", *nodes] + [f"\t{ids[a]}-->{ids[b]}" for a, b in sorted(edges - {missing})]
        source, target = missing
        assert differences(mermaid_graph(lines), dag) == [f"edge {source} --> {target} is not in the diagram"]


def test_a_stage_added_to_dvc_yaml_and_not_to_the_diagram_is_found(diagram, tmp_path):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path,
                   env=subprocess_env(), check=True, timeout=120)
    pipeline = yaml.safe_load((tmp_path / "dvc.yaml").read_text())
    pipeline["stages"]["report"] = {"cmd": "python -m stages.report", "deps": ["metrics.json"],
                                    "outs": ["report.html"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    assert differences(diagram, dvc_dag(tmp_path)) == ["stage report is not in the diagram",
                                                       "edge train --> report is not in the diagram"]
