"""The error rule of dogs_vs_cats/core/errors.py: a condition the user fixes is a UserError whose message
is one line, `error: <what>. Fix: <how>`, and run_stage, at the top of a stage or of predict.py, is
the only place that turns it into an exit (status 1, that line on stderr, no traceback).
"""

import ast
import re
import subprocess
import sys

import numpy as np
import pytest

import predict
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.params import ConvBase
from helpers import CLASSES, REPO, TEST_PARAMS, subprocess_env

ONE_LINE = re.compile(r"error: [^\n]+\. Fix: [^\n]*[^.\n]")  # as ParamError and DiskFull write it
ENTRY_POINTS = ("stages/", "predict.py")  # the stages and predict.py: what a user runs


# (a) Nothing exits but run_stage and the `if __name__ == "__main__":` blocks.

def rule_breaking_exits(source: str, path: str) -> list[str]:
    """The exits in a source file that the rule forbids.

    Allowed: inside run_stage (dogs_vs_cats/core/errors.py); inside a module-level
    `if __name__ == "__main__":` block.

    Args:
        source: the Python source.
        path: the file's path relative to the repository, with "/" separators.

    Returns:
        "path:line: the code" for each forbidden sys.exit, os._exit, exit, quit, `raise SystemExit`
        or `from sys import exit`.
    """
    tree = ast.parse(source)
    allowed = set()
    for node in tree.body:
        if is_main_block(node) or (path == "dogs_vs_cats/core/errors.py" and isinstance(node, ast.FunctionDef)
                                   and node.name == "run_stage"):
            allowed.update(range(node.lineno, node.end_lineno + 1))
    found = []
    for node in ast.walk(tree):
        if not is_exit(node) or node.lineno in allowed:
            continue
        found.append(f"{path}:{node.lineno}: {ast.get_source_segment(source, node)}")
    return found


def is_main_block(node: ast.stmt) -> bool:
    """Whether a statement is `if __name__ == "__main__":`."""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


def is_exit(node: ast.AST) -> bool:
    """Whether a node ends the program: sys.exit(...), os._exit(...), exit(...), quit(...),
    `raise SystemExit` or `from sys import exit`."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in ("exit", "quit")
        return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in (("sys", "exit"), ("os", "_exit")))
    if isinstance(node, ast.Raise) and node.exc is not None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(exc, ast.Name) and exc.id == "SystemExit"
    if isinstance(node, ast.ImportFrom):
        return node.module == "sys" and any(alias.name == "exit" for alias in node.names)
    return False


def sources():
    files = [*REPO.glob("dogs_vs_cats/**/*.py"), *REPO.glob("stages/*.py"), REPO / "predict.py"]
    return sorted(path.relative_to(REPO).as_posix() for path in files)


def test_only_run_stage_and_main_blocks_exit():
    found = [line for path in sources() for line in rule_breaking_exits((REPO / path).read_text(), path)]
    assert not found, "raise a UserError instead (dogs_vs_cats/core/errors.py):\n" + "\n".join(found)


def test_entry_points_show_user_errors_through_run_stage():
    for path in sources():
        if not path.startswith(ENTRY_POINTS):
            continue
        blocks = [node for node in ast.parse((REPO / path).read_text()).body if is_main_block(node)]
        assert blocks and all("run_stage(" in ast.unparse(block) for block in blocks), path


@pytest.mark.parametrize("code", [
    "import sys\ndef main():\n    sys.exit('error: no')\n",
    "import sys\nif True:\n    sys.exit(1)\n",
    "def f():\n    if __name__ == '__main__':\n        raise SystemExit(1)\n",
    "import os\nos._exit(1)\n",
    "exit('bye')\n",
    "from sys import exit as leave\n",
    "import sys\ndef run_stage(main):\n    sys.exit(main())\n",  # not the one of core/errors.py
    "import sys\ndef main():\n    sys.exit('usage: python -m stages.x')\n",
])
def test_the_scan_finds_an_exit_anywhere_else(code):
    assert rule_breaking_exits(code, "dogs_vs_cats/example.py")


def test_the_scan_lets_main_blocks_and_run_stage_exit():
    main_block = "import sys\nif __name__ == '__main__':\n    sys.exit(run_stage(main))\n"
    assert not rule_breaking_exits(main_block, "predict.py")
    assert rule_breaking_exits("import sys\ndef main():\n    sys.exit('usage: x')\n", "stages/example.py")
    assert not rule_breaking_exits((REPO / "dogs_vs_cats/core/errors.py").read_text(),
                                   "dogs_vs_cats/core/errors.py")


# (b) Each user-facing error of engines, page and predict is one line, shown by run_stage.

@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """An exported classifier as train writes it, with a one-convolution conv base: fast to load."""
    from dogs_vs_cats.core.runtime import keras
    from dogs_vs_cats.model import build_classifier, build_head

    conv_base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1)], name="conv_base")
    head = build_head((8, 8, 2), units=2, dropout=0.5, learning_rate=1e-3, classes=CLASSES)
    path = tmp_path_factory.mktemp("models") / "classifier.keras"
    build_classifier(conv_base, lambda images: images / 127.5 - 1, head, CLASSES).save(path)
    return path


def stale_int8_conv_base(folder):
    """An OpenVINO model that takes 16x16 images, where TEST_PARAMS's conv base takes 32x32."""
    import openvino as ov
    from openvino import opset13 as ops

    image = ops.parameter([1, 16, 16, 3], np.float32, name="image")
    path = folder / "conv_base.xml"
    ov.save_model(ov.Model([ops.relu(image)], [image], "stale"), path)
    return path


def unsupported_vega_lite(**_):
    raise RuntimeError("Unsupported Vega-Lite version string 5.21\n\nStack backtrace:\n   0: <unknown>")


def make_engines_no_int8_model(tmp_path, monkeypatch, classifier):
    from dogs_vs_cats.engines import load_engine

    conv = ConvBase(**TEST_PARAMS["conv_base"])
    return lambda: load_engine(conv, "openvino", "int8", tmp_path / "conv_base.xml", batch_size=32)


def make_engines_stale_int8_model(tmp_path, monkeypatch, classifier):
    from dogs_vs_cats.engines import load_engine

    stale = stale_int8_conv_base(tmp_path)
    return lambda: load_engine(ConvBase(**TEST_PARAMS["conv_base"]), "openvino", "int8", stale, batch_size=32)


def make_page_unsupported_vega_lite(tmp_path, monkeypatch, classifier):
    import vl_convert

    from dogs_vs_cats.page import page_template

    monkeypatch.setattr(vl_convert, "javascript_bundle", unsupported_vega_lite)
    return page_template


def make_page_placeholder_in_bundle(tmp_path, monkeypatch, classifier):
    import vl_convert

    from dogs_vs_cats.page import page_template

    monkeypatch.setattr(vl_convert, "javascript_bundle", lambda **_: "var page = '{plot_divs}';")
    return page_template


def make_predict_no_model(tmp_path, monkeypatch, classifier):
    return lambda: predict.main([str(tmp_path), "--model", str(tmp_path / "missing.keras")])


def make_predict_no_image(tmp_path, monkeypatch, classifier):
    (tmp_path / "notes.jpg").write_text("not an image\n")
    return lambda: predict.main([str(tmp_path / "notes.jpg"), "--model", str(classifier)])


def make_predict_no_file(tmp_path, monkeypatch, classifier):
    return lambda: predict.main([str(tmp_path), "--model", str(classifier)])


@pytest.mark.parametrize("make, says", [
    (make_engines_no_int8_model, "no int8 conv base at"),
    (make_engines_stale_int8_model, "it is stale"),
    (make_page_unsupported_vega_lite, "has no Vega-Lite 5.21"),
    (make_page_placeholder_in_bundle, "holds {plot_divs}"),
    (make_predict_no_model, "no model at"),
    (make_predict_no_image, "all 1 file(s) were skipped"),
    (make_predict_no_file, "the paths hold no file"),
])
def test_each_user_error_is_shown_as_one_line(make, says, tmp_path, monkeypatch, tiny_classifier, capsys):
    main = make(tmp_path, monkeypatch, tiny_classifier)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_stage(main)
    message = exit_info.value.code  # Python prints a str code on stderr, alone, and exits with 1
    assert isinstance(message, str) and ONE_LINE.fullmatch(message), message
    assert says in message


@pytest.mark.parametrize("command", [
    [REPO / "predict.py", "photo.jpg", "--model", "missing.keras"],
    ["-c", "import runpy, vl_convert; vl_convert.javascript_bundle = lambda **_: '{scripts}'; "
           "runpy.run_module('stages.page', run_name='__main__')"],
])
def test_a_user_error_ends_the_program_with_one_line_and_status_1(command, tmp_path):
    """As a user sees it: predict.py and the page stage, run as commands (neither starts TensorFlow)."""
    env = dict(subprocess_env(), PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, *map(str, command)], cwd=tmp_path, env=env, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert ONE_LINE.fullmatch(line), line
