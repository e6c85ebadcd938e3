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
"""Building blocks of the hierarchical dense 3D CNN (Chen et al., SPIE MI 2018).

Every block is a Keras functional helper on NDHWC tensors (batch, depth,
height, width, channels). The 3^3 convolutions use 'same' padding (the
reference) and no striding or pooling, so the network stays fully
convolutional: a voxel's output depends only on the input within its
receptive field, which is what block inference relies on. With 'valid'
padding the same weights compute only the voxels whose receptive field lies
inside the input (each 3^3 convolution trims one voxel per side), which is
all that block inference keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from common.stack import keras, register_serializable

if TYPE_CHECKING:  # for the hints only
    import tensorflow as tf

# Keras' default BatchNormalization momentum, as in the reference (0.99).
BN_MOMENTUM = 0.99
# The reference code's initialisers: he_normal for the convolutions followed by
# BN and ReLU (its Conv3DWithBN), glorot_normal for a dense unit's convolution.
CONV_BN_INITIALIZER = "he_normal"
DENSE_UNIT_INITIALIZER = "glorot_normal"


def conv_bn_relu(x: keras.KerasTensor, filters: int, kernel_size: int, name: str,
                 padding: str = "same") -> keras.KerasTensor:
    """Conv3D (no bias, the BN shift replaces it; he_normal as in the reference) -> BN -> ReLU.

    Args:
      x: NDHWC tensor.
      filters: output channels.
      kernel_size: 1 or 3 (cubic kernels).
      name: prefix of the layer names.
      padding: 'same' keeps the spatial size; 'valid' trims (kernel_size - 1) / 2 per side.
    Returns:
      NDHWC tensor with ``filters`` channels.
    """
    x = keras.layers.Conv3D(filters, kernel_size, padding=padding, use_bias=False,
                            kernel_initializer=CONV_BN_INITIALIZER, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def bn_relu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """BN -> ReLU (the pre-activation of a dense unit or a transition)."""
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def dense_unit(x: keras.KerasTensor, growth_rate: int, name: str, padding: str = "same") -> keras.KerasTensor:
    """One dense unit: BN -> ReLU -> Conv3D 3^3 (growth_rate, no bias, glorot_normal), concatenated to x.

    Args:
      x: NDHWC tensor with C channels.
      growth_rate: channels the unit adds.
      name: prefix of the layer names.
      padding: 'same', or 'valid' (x is centre-cropped by 1 to meet the trimmed conv output).
    Returns:
      NDHWC tensor with C + growth_rate channels (spatial size less 2 if 'valid').
    """
    y = bn_relu(x, name)
    y = keras.layers.Conv3D(growth_rate, 3, padding=padding, use_bias=False,
                            kernel_initializer=DENSE_UNIT_INITIALIZER, name=f"{name}_conv")(y)
    if padding == "valid":
        x = keras.layers.Cropping3D(1, name=f"{name}_crop")(x)
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_block(x: keras.KerasTensor, growth_rate: int, num_units: int, name: str,
                padding: str = "same") -> keras.KerasTensor:
    """``num_units`` dense units: C -> C + num_units * growth_rate channels.

    Each unit adds one 3^3 convolution, so the receptive field grows by 2 voxels per unit.
    """
    for unit in range(num_units):
        x = dense_unit(x, growth_rate, f"{name}_unit{unit + 1}", padding)
    return x


def transition(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """BN -> ReLU -> 1^3 conv (no bias) -> BN -> ReLU: a scale's feature output."""
    return conv_bn_relu(bn_relu(x, f"{name}_pre"), filters, 1, name)


@register_serializable("densenet3d")
class ChannelSlice(keras.layers.Layer):
    """Channels ``start:stop`` of an NDHWC tensor (a pathway's modality pair).

    A named layer rather than a Lambda so the model's config round-trips.
    """

    def __init__(self, start: int, stop: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start = start
        self.stop = stop

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs[..., self.start:self.stop]

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape[:-1]) + (self.stop - self.start,)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop}
