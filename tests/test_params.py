"""params.yaml is read as DVC reads and writes it."""

from dogs_vs_cats.core.params import load_params


def test_exponent_floats_that_dvc_writes_are_numbers(tmp_path):
    # `dvc exp run -S train.learning_rate=1e-5` writes `1e-05`: YAML 1.2 reads a float,
    # YAML 1.1 (PyYAML) a string, which the parameter checks would then reject.
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  learning_rate: 1e-05\n  epochs: 30\nconv_base:\n  weights: null\n")
    params = load_params(path).values
    assert params["train"]["learning_rate"] == 1e-5
    assert params["train"]["epochs"] == 30 and isinstance(params["train"]["epochs"], int)
    assert params["conv_base"]["weights"] is None
