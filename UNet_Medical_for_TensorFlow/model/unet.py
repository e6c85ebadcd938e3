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
"""UNet for 2D segmentation with unpadded ('valid') convolutions.

The default is NVIDIA's TF2 UNet_Medical network exactly (34,512,258
parameters, 572x572x1 in, 388x388x2 logits out), which follows
Ronneberger et al., "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015 (arXiv 1505.04597) except that every decoder level
ends with a 3x3 stride-2 transposed convolution with ReLU where the paper
starts it with a 2x2 up-convolution.

Layout: inputs NHWC float, outputs NHWC logits (no softmax), always float32
so that the loss is computed in float32 under a mixed-precision policy.
"""

from __future__ import annotations

from common.stack import keras
from model.tile_sizes import BOTTLENECK_MULTIPLIER, LEVEL_MULTIPLIERS, output_size


def _conv(filters, name):
    return keras.layers.Conv2D(filters, 3, padding="valid", activation="relu",
                               kernel_initializer="glorot_uniform", name=name)


def _up(filters, name):
    return keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu",
                                        kernel_initializer="glorot_uniform", name=name)


def _two_convs(x, filters, name):
    x = _conv(filters, f"{name}_conv1")(x)
    return _conv(filters, f"{name}_conv2")(x)


def _crop_and_concat(upsampled, skip, name):
    """Concatenate ``upsampled`` with the centre of ``skip`` cropped to its size."""
    margin = (skip.shape[1] - upsampled.shape[1]) // 2
    cropped = keras.layers.Cropping2D(margin, name=f"{name}_crop")(skip)
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([upsampled, cropped])


def build_unet(base_filters: int = 64, tile_size: int = 572, n_classes: int = 2, in_channels: int = 1,
               dropout_rate: float = 0.5, name: str = "unet") -> keras.Model:
    """Build the UNet as a Keras functional model.

    Args:
      base_filters: width of the first level; the levels use 1, 2, 4, 8 times
        it and the bottleneck 16 times (64 is NVIDIA's and the paper's).
      tile_size: height = width of the input tile; must fit the valid
        convolutions (572, 508, 444, ..., see :func:`output_size`).
      n_classes: channels of the output logits.
      in_channels: channels of the input (1 for the grey EM slices).
      dropout_rate: dropout after the bottleneck convolutions (training only).
      name: the model's name.
    Returns:
      ``keras.Model`` mapping ``(N, tile_size, tile_size, in_channels)`` to
      float32 logits ``(N, output_size(tile_size), output_size(tile_size), n_classes)``.
    Raises:
      ValueError: a bad width, class count, dropout rate or tile size.
    """
    if base_filters < 1 or n_classes < 2 or in_channels < 1:
        raise ValueError(f"base_filters ({base_filters}) and in_channels ({in_channels}) must be "
                         f"at least 1 and n_classes ({n_classes}) at least 2")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
    output_size(tile_size)  # raises ValueError naming the nearest valid sizes

    inputs = keras.Input((tile_size, tile_size, in_channels), name="image")
    x, skips = inputs, []
    for level, multiplier in enumerate(LEVEL_MULTIPLIERS):
        x = _two_convs(x, base_filters * multiplier, f"down{level}")
        skips.append(x)  # the pre-pool tensor is the skip connection
        x = keras.layers.MaxPooling2D(2, name=f"down{level}_pool")(x)

    bottleneck_filters = base_filters * BOTTLENECK_MULTIPLIER
    x = _two_convs(x, bottleneck_filters, "bottleneck")
    x = keras.layers.Dropout(dropout_rate, name="bottleneck_dropout")(x)
    x = _up(bottleneck_filters // 2, "bottleneck_up")(x)

    for level in reversed(range(1, len(LEVEL_MULTIPLIERS))):
        filters = base_filters * LEVEL_MULTIPLIERS[level]
        x = _crop_and_concat(x, skips[level], f"up{level}")
        x = _two_convs(x, filters, f"up{level}")
        x = _up(filters // 2, f"up{level}_up")(x)

    x = _crop_and_concat(x, skips[0], "output")
    x = _two_convs(x, base_filters, "output")
    logits = keras.layers.Conv2D(n_classes, 1, name="logits")(x)
    # Float32 logits under a mixed policy: softmax and the loss stay accurate.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(logits)
    return keras.Model(inputs, logits, name=name)
