"""Which engine runs the conv base, in which precision: extract.engine, extract.precision, quantize.images.

    precision   keras                          openvino
    float32     yes                            yes (converted from the Keras conv base)
    bfloat16    mixed_bfloat16 dtype policy    bf16 inference precision (AVX-512 BF16 or AMX CPUs)
    float16     mixed_float16 (for GPUs)       -
    int8        -                              the conv base quantised by the quantize stage

No TensorFlow here: the quantize stage checks these and, unless it quantises, writes its note
without starting TensorFlow (dogs_vs_cats/engines.py runs the engines).
"""

from dogs_vs_cats.core.params import ParamError, one_of, positive_int, section

ENGINES = ("keras", "openvino")
PRECISIONS = ("float32", "bfloat16", "float16", "int8")
RENAMED_PRECISIONS = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}  # before the engines


def check_precision(params):
    """extract.precision, checked (the combinations with an engine: check_engine)."""
    precision = section(params, "extract").get("precision")
    if precision in RENAMED_PRECISIONS:
        raise ParamError("extract.precision", f"{precision} is now called {RENAMED_PRECISIONS[precision]}",
                         f"set extract.precision: {RENAMED_PRECISIONS[precision]}")
    return one_of(params, "extract.precision", PRECISIONS)


def check_engine(params):
    """(extract.engine, extract.precision), checked as a combination that can run."""
    engine = one_of(params, "extract.engine", ENGINES)
    precision = check_precision(params)
    if engine == "keras" and precision == "int8":
        raise ParamError("extract.precision", "int8 runs on the OpenVINO engine only",
                         "set extract.engine: openvino, or a float precision such as float32")
    if engine == "openvino" and precision == "float16":
        raise ParamError("extract.precision", "float16 is the Keras engine's setting for GPUs; OpenVINO "
                         "runs float32, bfloat16 or int8 on the CPU",
                         "set extract.precision: bfloat16 (or extract.engine: keras on a GPU)")
    return engine, precision


def quantizes(engine, precision):
    """Whether extract runs the int8 conv base that the quantize stage writes."""
    return (engine, precision) == ("openvino", "int8")


def check_calibration(params):
    """quantize.images: how many train images calibrate int8."""
    return positive_int(params, "quantize.images")
