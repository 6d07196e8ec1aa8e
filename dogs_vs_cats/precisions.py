"""Which engine runs the conv base, in which precision: extract.engine, extract.precision, quantize.images.

    precision   keras                          openvino
    float32     yes                            yes (converted from the Keras conv base)
    bfloat16    mixed_bfloat16 dtype policy    bf16 inference precision (AVX-512 BF16 or AMX CPUs)
    float16     mixed_float16 (for GPUs)       -
    int8        -                              the conv base quantised by the quantize stage

Which combinations run is declared with the parameters (core.params.Extract). No TensorFlow
here: unless it quantises, the quantize stage writes its note without starting TensorFlow
(dogs_vs_cats/engines.py runs the engines).
"""

from dogs_vs_cats.core.params import Extract


def quantizes(extract: Extract) -> bool:
    """Whether extract runs the int8 conv base that the quantize stage writes."""
    return (extract.engine, extract.precision) == ("openvino", "int8")
