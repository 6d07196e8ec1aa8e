"""The one module of the package that uses Keras's private names: the head's XLA-fused RMSprop.

The fused update reads the velocity that keras.optimizers.RMSprop keeps for each variable, through
names Keras does not promise to keep (PRIVATE_NAMES). A Keras that renamed them would fail deep
inside the first training step with an AttributeError; instead, importing this module checks them
on a one-element variable and raises KerasInternalsChanged, one line that names the Keras version
and this module. No other file, tests included, spells these names (tests/test_model.py checks).
"""

from __future__ import annotations

from pathlib import Path

from dogs_vs_cats.core.errors import UserError
from dogs_vs_cats.core.runtime import keras, tf

# What RMSprop.update_step below reads of keras.optimizers.RMSprop after build: the list of
# velocities, and the method that gives a variable's position in it.
PRIVATE_NAMES = ("_velocities", "_get_variable_index")

# As the user sees it from the repository root, whatever name the module was imported under.
MODULE_FILE = Path(__file__).resolve().relative_to(Path(__file__).resolve().parents[1]).as_posix()


class KerasInternalsChanged(UserError, ImportError):
    """The installed Keras lacks (or changed) a private name this module uses: its one line names the
    Keras version, the names and this module. An ImportError too: the module cannot be used."""


def check_keras_internals() -> None:
    """Check that keras.optimizers.RMSprop, built on a one-element variable, has PRIVATE_NAMES and
    that they give that variable's velocity, as RMSprop.update_step reads it.

    Cheap enough for every import: a one-element variable and the optimizer's own, no graph built.

    Raises:
        KerasInternalsChanged: the names are missing or no longer lead to the velocity.
    """
    probe = None
    try:
        variable = keras.Variable([0.0])
        probe = keras.optimizers.RMSprop()
        probe.build([variable])
        velocity = probe._velocities[probe._get_variable_index(variable)]
        if tuple(velocity.shape) != tuple(variable.shape):
            raise LookupError(f"the velocity found has shape {velocity.shape}, the variable {variable.shape}")
    except Exception as error:  # whatever a changed Keras raises here, the fix is the same
        missing = [name for name in PRIVATE_NAMES if not hasattr(probe, name)]
        raise KerasInternalsChanged(
            f"error: Keras {keras.__version__} renamed or changed the RMSprop internals that {MODULE_FILE} "
            f"uses ({', '.join(missing or PRIVATE_NAMES)}). Fix: install the Keras of requirements.txt, "
            "or update that module") from error


check_keras_internals()


class RMSprop(keras.optimizers.RMSprop):
    """Keras's RMSprop (no momentum, not centered) with its update compiled by XLA into one loop.

    A step of the head is memory-bound: its cost is the passes over the Dense kernel. Keras runs
    the update as five separate TensorFlow ops (a pass each, over arrays as large as the kernel);
    XLA fuses them into one pass that reads gradient, velocity and kernel and writes velocity and
    kernel. The rest of the step stays with TensorFlow, whose oneDNN matrix products use both cores
    where XLA's CPU code uses one. python -m bench.train compares the three.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.momentum or self.centered:  # _fused_update implements neither
            raise ValueError(f"the RMSprop of {MODULE_FILE} supports neither momentum nor centered; "
                             "use keras.optimizers.RMSprop for those")

    def update_step(self, gradient: tf.Tensor, variable: keras.Variable,
                    learning_rate: float | tf.Tensor) -> None:
        """RMSprop's update of `variable` by `gradient`, as one XLA-fused pass (_fused_update)."""
        velocity = self._velocities[self._get_variable_index(variable)]
        self._fused_update(gradient, variable, velocity.value, tf.cast(learning_rate, variable.dtype))

    @tf.function(jit_compile=True)
    def _fused_update(self, gradient, variable, velocity, learning_rate):
        # The same arithmetic as keras.optimizers.RMSprop.update_step.
        velocity.assign(self.rho * velocity + (1 - self.rho) * tf.square(gradient))
        variable.assign_sub(learning_rate * gradient / tf.sqrt(velocity + self.epsilon))
