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

This is the only module that asks which stack it runs on; model code reaches
it through ``common.npu_utils`` (``from common.npu_utils import keras``) and
never tests a version itself. Importing it imports TensorFlow.
"""

import os
import random

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


def set_random_seed(seed):
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``, added in TF 2.7)."""
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if KERAS3:
        keras.utils.set_random_seed(seed)  # also seeds Keras 3's own SeedGenerator


def register_serializable(package):
    """The class decorator that lets ``keras.models.load_model`` find a custom layer."""
    if KERAS3:
        return keras.saving.register_keras_serializable(package=package)
    return keras.utils.register_keras_serializable(package=package)


def hard_swish(x):
    """h-swish of MobileNetV3, ``x * relu6(x + 3) / 6`` (Keras 3's built-in; defined here for Keras 2.6)."""
    if KERAS3:
        return keras.activations.hard_swish(x)
    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


def loss_scale_optimizer(optimizer):
    """``optimizer`` with dynamic loss scaling for float16."""
    if KERAS3:
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return keras.mixed_precision.LossScaleOptimizer(optimizer)


def is_loss_scaled(optimizer):
    """True for a loss-scaling optimizer of either stack (also the Ascend adapter's, a subclass)."""
    if KERAS3:
        return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    return isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)


def scale_loss(optimizer, loss):
    """The loss to differentiate: scaled up for a loss-scaling optimizer."""
    if not is_loss_scaled(optimizer):
        return loss
    return optimizer.scale_loss(loss) if KERAS3 else optimizer.get_scaled_loss(loss)


def unscale_gradients(optimizer, grads):
    """Gradients of :func:`scale_loss` ready for ``apply_gradients``: Keras 3's LossScaleOptimizer
    unscales inside ``apply_gradients``, Keras 2.6's must be asked to."""
    if KERAS3 or not is_loss_scaled(optimizer):
        return grads
    return optimizer.get_unscaled_gradients(grads)


def optimizer_variables(optimizer):
    """The optimizer's variables as a list (a property in Keras 3, a method in Keras 2.6)."""
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)


def build_optimizer(optimizer, variables):
    """Create the optimizer's slot variables for ``variables`` now (before a restore or a broadcast):
    Keras 3's ``build``; Keras 2.6 creates them on the first ``apply_gradients`` unless asked."""
    if KERAS3:
        optimizer.build(variables)
    else:
        optimizer._create_all_weights(variables)  # Keras 2.6's only way; no public one exists
