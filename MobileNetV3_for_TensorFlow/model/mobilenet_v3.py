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
"""MobileNetV3 backbone and classifier built from the paper's tables.

Pure builders: every hyper-parameter is an argument; nothing reads flags,
files or the environment. Every layer is a stock Keras layer with an explicit
name (h-swish ``x * relu6(x+3)/6`` and the hard sigmoid ``relu6(x+3)/6`` come
from common/stack.py: Keras 3's ``Activation("hard_swish")`` and
``Activation("hard_sigmoid")``, stock layers computing the same on Keras 2.6),
so a saved model loads with plain ``keras.models.load_model`` in a process
that never imported this module.
"""

from __future__ import annotations

from common import stack
from common.stack import keras
from model.specs import NETWORKS, SE_RATIO

layers = keras.layers
# Keras's BatchNormalization momentum has the meaning of the paper's BN decay.
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
# Layers after the backbone's last 1x1 conv; --freeze_backbone_epochs trains
# only these, and a different class count replaces "logits".
CLASSIFIER_LAYERS = ("head_pool", "head_conv", "head_hswish", "head_dropout", "logits",
                     "logits_flatten", "predictions")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down.

    The rounding of the paper's reference (TF-slim ``_make_divisible``).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _check_network(network, alpha):
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {network!r}")
    if not alpha > 0:
        raise ValueError(f"alpha (the width multiplier) must be positive, got {alpha}")


def _activation(x, kind, name):
    if kind == "RE":
        return layers.ReLU(name=f"{name}_relu")(x)
    if kind == "HS":
        return stack.hard_swish_layer(x, f"{name}_hswish")
    raise ValueError(f"activation must be RE or HS, got {kind!r}")


def _conv_bn(x, filters, kernel, stride, activation, name, bn_momentum):
    """kxk conv without bias (BN follows), BN, then the activation if one is given."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return _activation(x, activation, name) if activation else x


def _squeeze_excite(x, channels, name):
    """Global pool -> 1x1 to a quarter (ReLU) -> 1x1 back (hard sigmoid) -> scale ``x``."""
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    gate = layers.Conv2D(make_divisible(channels * SE_RATIO), 1, name=f"{name}_se_reduce")(gate)
    gate = layers.ReLU(name=f"{name}_se_relu")(gate)
    gate = layers.Conv2D(channels, 1, name=f"{name}_se_expand")(gate)
    gate = stack.hard_sigmoid_layer(gate, f"{name}_se_hsigmoid")
    return layers.Multiply(name=f"{name}_se_scale")([x, gate])


def _bneck(x, spec, in_paper, filters, stride, dilation, name, bn_momentum):
    """One bottleneck: expand 1x1 -> depthwise kxk -> SE -> linear 1x1 -> residual.

    The expansion keeps the paper's ratio (expanded / input width) applied to
    the actual, alpha-scaled input width, as the reference implementations do.
    """
    in_channels = x.shape[-1]
    shortcut = x
    expanded = make_divisible(in_channels * spec.expanded / in_paper)
    if spec.expanded != in_paper:
        x = _conv_bn(x, expanded, 1, 1, spec.activation, f"{name}_expand", bn_momentum)
    x = layers.DepthwiseConv2D(spec.kernel, strides=stride, dilation_rate=dilation, padding="same",
                               use_bias=False, name=f"{name}_depthwise")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON,
                                  name=f"{name}_depthwise_bn")(x)
    x = _activation(x, spec.activation, f"{name}_depthwise")
    if spec.se:
        x = _squeeze_excite(x, expanded, name)
    x = _conv_bn(x, filters, 1, 1, None, f"{name}_project", bn_momentum)
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def build_backbone(inputs: keras.KerasTensor, network: str = "small", alpha: float = 1.0,
                   bn_momentum: float = BN_MOMENTUM,
                   dilate_last_stage: bool = False) -> tuple[keras.KerasTensor, dict[int, keras.KerasTensor]]:
    """The feature extractor: stem, the table's bnecks, the last 1x1 conv.

    Args:
      inputs: a Keras tensor, NHWC, already scaled to [-1, 1].
      network: "small" or "large" (paper Tables 2 and 1).
      alpha: width multiplier applied to every layer's width (rounded to 8).
      bn_momentum: BatchNormalization momentum.
      dilate_last_stage: remove the last stride-2 and dilate that stage by 2
        (the paper's segmentation backbone): output stride 16 instead of 32.
    Returns:
      ``(features, endpoints)``: the last conv's output (NHWC, 576*alpha or
      960*alpha channels, rounded) and ``{output_stride: tensor}`` holding,
      for each output stride 2, 4, 8, 16 (and 32), the last tensor computed at
      that stride; the entry of the final stride is ``features``.
    """
    _check_network(network, alpha)
    spec = NETWORKS[network]
    last_strided = max(i for i, block in enumerate(spec.blocks) if block.stride == 2)
    x = _conv_bn(inputs, make_divisible(spec.stem * alpha), 3, 2, "HS", "stem_conv", bn_momentum)
    output_stride, endpoints = 2, {}
    in_paper = spec.stem
    for index, block in enumerate(spec.blocks):
        stride, dilation = block.stride, 1
        if dilate_last_stage and index >= last_strided:
            stride, dilation = 1, 2
        if stride == 2:
            endpoints[output_stride] = x
            output_stride *= 2
        x = _bneck(x, block, in_paper, make_divisible(block.filters * alpha), stride, dilation,
                   f"block{index}", bn_momentum)
        in_paper = block.filters
    x = _conv_bn(x, make_divisible(spec.last_conv * alpha), 1, 1, "HS", "last_conv", bn_momentum)
    endpoints[output_stride] = x
    return x, endpoints


def build_classifier(network: str = "small", alpha: float = 1.0, num_classes: int = 1000,
                     input_shape: tuple[int | None, int | None, int] = (224, 224, 3), dropout: float = 0.2,
                     bn_momentum: float = BN_MOMENTUM, name: str | None = None) -> keras.Model:
    """MobileNetV3 classification network.

    Args:
      network: "small" or "large".
      alpha: width multiplier. As in the paper's reference (TF-slim) and
        keras.applications, the 1024/1280-wide head is only widened for
        alpha > 1, never narrowed.
      num_classes: width of the softmax.
      input_shape: (height, width, 3); height and width may be None.
      dropout: rate of the dropout before the classifier.
    Returns:
      A functional ``keras.Model`` taking NHWC RGB images with values in
      [0, 255] (rescaled inside the model to [-1, 1]) and returning class
      probabilities (batch, num_classes), float32 under any dtype policy.
    """
    _check_network(network, alpha)
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    x, _ = build_backbone(x, network, alpha, bn_momentum)
    head = NETWORKS[network].head
    head = make_divisible(head * alpha) if alpha > 1.0 else head
    x = layers.GlobalAveragePooling2D(keepdims=True, name="head_pool")(x)
    # The head conv has a bias: no BN follows it (paper Tables 1 and 2, "NBN").
    x = layers.Conv2D(head, 1, name="head_conv")(x)
    x = stack.hard_swish_layer(x, "head_hswish")
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Conv2D(num_classes, 1, name="logits")(x)
    x = layers.Flatten(name="logits_flatten")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"mobilenetv3_{network}_{alpha:g}")
