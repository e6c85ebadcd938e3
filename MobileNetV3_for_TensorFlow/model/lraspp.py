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
"""Lite Reduced Atrous Spatial Pyramid Pooling (LR-ASPP) segmentation head.

Howard et al., "Searching for MobileNetV3", Section 6.3 and Figure 10: the
backbone's last stage runs at output stride 16 (stride removed, dilation 2);
its features pass a 1x1 conv (128, BN, ReLU) gated by a pooled branch
(pool, 1x1 conv 128, sigmoid); the product is upsampled x2, classified by a
1x1 conv and added to a 1x1 classifier of the 1/8 features.
"""

from __future__ import annotations

from common.stack import keras
from model.mobilenet_v3 import BN_EPSILON, BN_MOMENTUM, build_backbone

layers = keras.layers
# Multiples of this are valid input sides (1/8 and 1/16 maps must align).
INPUT_MULTIPLE = 16
# Layers that are not part of the backbone (a fresh head when fine-tuning).
SEGMENTATION_HEAD_PREFIX = "lraspp_"


def build_lraspp(network: str = "small", alpha: float = 1.0, num_classes: int = 19,
                 input_shape: tuple[int | None, int | None, int] = (None, None, 3), head_filters: int = 128,
                 bn_momentum: float = BN_MOMENTUM, name: str | None = None) -> keras.Model:
    """MobileNetV3 + LR-ASPP semantic segmentation network.

    Taps are chosen by stage: the last 1/8-resolution tensor of the backbone
    and its final (dilated, 1/16) features. The pooling branch is a global
    average pool, not the paper's fixed 49x49 window, so any input whose
    sides are multiples of 16 (hence every multiple of 32) works, including a
    model built with ``input_shape=(None, None, 3)``.

    Args:
      network: "small" or "large".
      alpha: width multiplier of the backbone.
      num_classes: number of mask classes (mask value 255 = ignore).
      input_shape: (height, width, 3); the sides may be None.
      head_filters: width of the LR-ASPP branches (128 in the paper).
    Returns:
      ``keras.Model``: NHWC RGB images in [0, 255] -> per-pixel class
      probabilities (batch, height, width, num_classes), float32.
    Raises:
      ValueError: a known side is not a multiple of 16.
    """
    for side in input_shape[:2]:
        if side is not None and side % INPUT_MULTIPLE:
            raise ValueError(f"LR-ASPP input sides must be multiples of {INPUT_MULTIPLE}, "
                             f"got {input_shape[:2]}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    high, endpoints = build_backbone(x, network, alpha, bn_momentum, dilate_last_stage=True)
    low = endpoints[8]

    p = SEGMENTATION_HEAD_PREFIX
    branch = layers.Conv2D(head_filters, 1, use_bias=False, name=f"{p}conv")(high)
    branch = layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=f"{p}conv_bn")(branch)
    branch = layers.ReLU(name=f"{p}conv_relu")(branch)
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{p}pool")(high)
    gate = layers.Conv2D(head_filters, 1, use_bias=False, name=f"{p}gate_conv")(gate)
    gate = layers.Activation("sigmoid", name=f"{p}gate_sigmoid")(gate)
    # (batch, h, w, c) * (batch, 1, 1, c): the gate broadcasts over the map.
    x = layers.Multiply(name=f"{p}gated")([branch, gate])
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{p}up_x2")(x)
    x = layers.Conv2D(num_classes, 1, name=f"{p}high_classifier")(x)
    low = layers.Conv2D(num_classes, 1, name=f"{p}low_classifier")(low)
    x = layers.Add(name=f"{p}sum")([x, low])
    x = layers.UpSampling2D(8, interpolation="bilinear", name=f"{p}up_x8")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"lraspp_mobilenetv3_{network}_{alpha:g}")
