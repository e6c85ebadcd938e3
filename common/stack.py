# Copyright 2026 The ModelZoo TF2 medical imaging authors. All Rights Reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""The two TensorFlow stacks the repository runs on, and every difference between them.

- TF 2.21 / Keras 3 / Python 3.11 (``requirements.txt``): GPU and CPU machines.
- TF 2.6.5 / Keras 2.6 / Python 3.7-3.9 (``requirements-tf26.txt``): the only
  TensorFlow 2 that Huawei's Ascend adapter ``npu_device`` supports.

This is the only module that asks which stack it runs on; model code imports
its names from here (``from common.stack import keras``) and never tests a
version itself. Importing it imports TensorFlow.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

try:
    import keras as _keras
except ImportError:  # TF 2.6.5 without the keras 2.6 wheel beside it
    _keras = None
# On TF 2.6.5 the standalone ``keras`` 2.6 package lacks public names such as
# keras.optimizers.Adam; tf.keras is the same implementation with all of them.
KERAS3 = _keras is not None and _keras.__version__.startswith("3.")
keras = _keras if KERAS3 else tf.keras
STACK = f"TF {tf.__version__} / Keras {keras.__version__}"
# What a checkpoint's object graph depends on: Keras 3 tracks a model's variables under other
# paths than Keras 2 (``_operations/N`` against ``layer_with_weights-N``).
CHECKPOINT_FAMILY = "keras3" if KERAS3 else "keras2"
# The file format keras.Model.save writes on this stack; both stacks read HDF5 weights by layer name.
MODEL_FILE_SUFFIX = ".keras" if KERAS3 else ".h5"
# Whether mixed_bfloat16 runs on a CPU with bfloat16 arithmetic. TF 2.6.5's CPU kernels have no
# bfloat16 Conv2D: a graph fails "Missing 0-th output from Conv2D", and with TF_ENABLE_ONEDNN_OPTS=1
# the process dies of SIGFPE (both tried here), so that stack trains in float32 on a CPU.
CPU_BFLOAT16 = KERAS3


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow: ``keras.utils.set_random_seed``, which TF 2.6.5 lacks."""
    if KERAS3:
        keras.utils.set_random_seed(seed)  # also seeds Keras 3's own global SeedGenerator
        return
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def register_serializable(package: str) -> Callable[[type], type]:
    """The class decorator that lets ``keras.models.load_model`` find a custom layer."""
    if KERAS3:
        return keras.saving.register_keras_serializable(package=package)
    return keras.utils.register_keras_serializable(package=package)


def hard_sigmoid_layer(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """MobileNetV3's hard sigmoid ``relu6(x + 3) / 6`` on the Keras tensor ``x``, as stock layers named ``name...``.

    Keras 3's ``Activation("hard_sigmoid")`` is exactly that; Keras 2.6's is
    ``clip(0.2 x + 0.5, 0, 1)``, so there it is ``(x + 3) / 6`` clipped to
    [0, 1] by a Rescaling and a ReLU: a saved model of either stack then
    loads with plain ``keras.models.load_model``.
    """
    if KERAS3:
        return keras.layers.Activation("hard_sigmoid", name=name)(x)
    x = keras.layers.Rescaling(1.0 / 6.0, offset=0.5, name=f"{name}_affine")(x)
    return keras.layers.ReLU(max_value=1.0, name=name)(x)


def hard_swish_layer(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """h-swish ``x * relu6(x + 3) / 6`` on the Keras tensor ``x`` as stock layers (the last one named ``name``):
    Keras 3's ``Activation("hard_swish")``; Keras 2.6 has none, so ``x`` times :func:`hard_sigmoid_layer`."""
    if KERAS3:
        return keras.layers.Activation("hard_swish", name=name)(x)
    return keras.layers.Multiply(name=name)([x, hard_sigmoid_layer(x, f"{name}_gate")])


def loss_scale_optimizer(optimizer: keras.optimizers.Optimizer,
                         initial_scale: float | None = None) -> keras.optimizers.Optimizer:
    """``optimizer`` with dynamic loss scaling for float16, from ``initial_scale`` (None: Keras' 2 ** 15)."""
    scale = {} if initial_scale is None else {"initial_scale": initial_scale}
    if KERAS3:
        return keras.optimizers.LossScaleOptimizer(optimizer, **scale)
    return keras.mixed_precision.LossScaleOptimizer(optimizer, **scale)


def is_loss_scaled(optimizer: keras.optimizers.Optimizer) -> bool:
    """True for a loss-scaling optimizer of either stack (also the Ascend adapter's, a subclass)."""
    if KERAS3:
        return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    return isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)


def scale_loss(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
    """The loss to differentiate: scaled up for a loss-scaling optimizer."""
    if not is_loss_scaled(optimizer):
        return loss
    return optimizer.scale_loss(loss) if KERAS3 else optimizer.get_scaled_loss(loss)


def unscale_gradients(optimizer: keras.optimizers.Optimizer, grads: Sequence[tf.Tensor]) -> Sequence[tf.Tensor]:
    """Gradients of :func:`scale_loss` ready for ``apply_gradients``: Keras 3's LossScaleOptimizer
    unscales inside ``apply_gradients``, Keras 2.6's must be asked to."""
    if KERAS3 or not is_loss_scaled(optimizer):
        return grads
    return optimizer.get_unscaled_gradients(grads)


def optimizer_variables(optimizer: keras.optimizers.Optimizer) -> list[keras.Variable | tf.Variable]:
    """The optimizer's variables as a list (a property in Keras 3, a method in Keras 2.6)."""
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)


def build_optimizer(optimizer: keras.optimizers.Optimizer, variables: Sequence[keras.Variable | tf.Variable]) -> None:
    """Create the optimizer's slot variables for ``variables`` now (before a restore or a broadcast):
    Keras 3's ``build``; Keras 2.6 creates them on the first ``apply_gradients`` unless asked."""
    if KERAS3:
        optimizer.build(variables)
    else:
        optimizer._create_all_weights(variables)  # Keras 2.6's only way; no public one exists


def decoupled_optimizer(optimizer_class: type[keras.optimizers.Optimizer],
                        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
                        weight_decay: float = 0.0, exclude_from_weight_decay: Sequence[str] = (),
                        accumulator_start: float | None = None, **options: Any) -> keras.optimizers.Optimizer:
    """``optimizer_class`` (keras.optimizers.Adam, RMSprop, ...) with Keras 3's decoupled weight decay, on either stack.

    Each step, before the update, ``w -= learning_rate * weight_decay * w`` for
    every variable whose name holds none of ``exclude_from_weight_decay``.
    Keras 3's optimizers take ``weight_decay=``; Keras 2.6's do not, so there a
    subclass does the same per variable around the stock update.

    ``accumulator_start`` (RMSprop only): the value the squared-gradient
    average starts at; None keeps Keras' 0. TF1's ``tf.train.RMSPropOptimizer``
    starts it at 1.0, so its first steps are small; with momentum both stacks'
    RMSprop then do TF1's ``ApplyRMSProp`` (epsilon inside the square root).
    """
    if accumulator_start is not None:
        if not issubclass(optimizer_class, keras.optimizers.RMSprop):
            raise ValueError(f"accumulator_start is for RMSprop, not {optimizer_class.__name__}")
        optimizer_class = _rmsprop_from(float(accumulator_start))
    if KERAS3:
        optimizer = optimizer_class(learning_rate, weight_decay=weight_decay or None, **options)
        if weight_decay:
            optimizer.exclude_from_weight_decay(var_names=list(exclude_from_weight_decay))
        return optimizer
    if not weight_decay:
        return optimizer_class(learning_rate, **options)
    return _keras2_decoupled_class(optimizer_class)(learning_rate, weight_decay, exclude_from_weight_decay,
                                                    **options)


@functools.lru_cache(maxsize=None)
def _rmsprop_from(start):
    """keras.optimizers.RMSprop whose squared-gradient averages start at ``start``."""

    class RMSpropFrom(keras.optimizers.RMSprop):
        if KERAS3:
            def build(self, var_list):
                super().build(var_list)
                for velocity in self._velocities:  # Keras 3 creates them as zeros, with no initializer option
                    velocity.assign(tf.fill(velocity.shape, tf.constant(start, velocity.dtype)))
        else:
            def _create_slots(self, var_list):
                for var in var_list:  # the stock _create_slots then finds them made
                    self.add_slot(var, "rms", initializer=tf.keras.initializers.Constant(start))
                super()._create_slots(var_list)

    return RMSpropFrom


_DECOUPLED_CLASSES = {}


def _keras2_decoupled_class(base):
    """A subclass of the Keras 2.6 optimizer ``base`` doing :func:`decoupled_optimizer`'s decay."""
    if base in _DECOUPLED_CLASSES:
        return _DECOUPLED_CLASSES[base]

    class Decoupled(base):
        def __init__(self, learning_rate, weight_decay, exclude_from_weight_decay, **options):
            super().__init__(learning_rate, **options)
            self.weight_decay = float(weight_decay)
            self._no_decay = tuple(exclude_from_weight_decay)

        def _decays(self, var):
            short_name = var.name.split("/")[-1].split(":")[0]  # "block0_expand/kernel:0" -> "kernel"
            return self.weight_decay > 0 and not any(part in short_name for part in self._no_decay)

        def _resource_apply_dense(self, grad, var, apply_state=None):
            # Called per variable inside the strategy's update, as Keras 3 applies its decay.
            if not self._decays(var):
                return super()._resource_apply_dense(grad, var, apply_state)
            rate = self._decayed_lr(var.dtype.base_dtype) * self.weight_decay
            with tf.control_dependencies([var.assign_sub(var * rate, read_value=False)]):
                return super()._resource_apply_dense(grad, var, apply_state)

    Decoupled.__name__ = Decoupled.__qualname__ = f"Decoupled{base.__name__}"
    _DECOUPLED_CLASSES[base] = Decoupled
    return Decoupled


def export_saved_model(model: keras.Model, path: str) -> None:
    """Write ``model`` as a TF SavedModel whose ``serving_default`` signature is the same on both stacks:
    ``{"images": (batch, *input shape)} -> {"predictions": model(images)}``.

    Left to themselves the stacks name the output differently (Keras 3's ``model.export`` gives
    ``output_0``, Keras 2.6's ``tf.saved_model.save`` the last layer's name), so a serving client
    would depend on the stack that exported; ``tf.saved_model.save`` with one explicit signature
    writes the same on both.
    """
    source = model.inputs[0]
    spec = tf.TensorSpec((None,) + tuple(source.shape[1:]), source.dtype, name="images")

    @tf.function(input_signature=[spec])
    def serve(images):
        return {"predictions": model(images, training=False)}

    tf.saved_model.save(model, path, signatures={"serving_default": serve})
