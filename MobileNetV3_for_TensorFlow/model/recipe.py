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
"""The optimiser recipe: learning-rate schedule, TF1's RMSProp (the paper's) or Adam, weight decay, moving average."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterable, Iterator

import tensorflow as tf

from common import npu_utils, stack
from common.stack import keras

# The paper's RMSProp: TF1's tf.train.RMSPropOptimizer (squared-gradient average starting at 1,
# epsilon inside the square root), momentum 0.9, decay (rho) 0.9, epsilon 1e-3 as the TPU MnasNet and
# EfficientNet trainers of the same authors set them.
RMSPROP = {"rho": 0.9, "momentum": 0.9, "epsilon": 1e-3, "accumulator_start": 1.0}
# Weights that --weight_decay_mode=decoupled leaves alone (by name): BN scales and offsets, biases.
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")
# BatchNormalization's moving statistics, averaged with the weights as the paper's TPU trainers did.
BN_STATISTICS = ("moving_mean", "moving_variance")


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then cosine decay to 0, step decay, or constant.

    Args:
      peak: learning rate at the end of the warm-up.
      total_steps, warmup_steps, decay_steps: in optimizer steps.
      kind: "cosine", "step" or "constant".
      decay_rate: step schedule factor every ``decay_steps``.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, kind: str = "cosine",
                 decay_steps: int = 1, decay_rate: float = 1.0) -> None:
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)
        self.kind, self.decay_steps, self.decay_rate = kind, max(int(decay_steps), 1), float(decay_rate)

    def __call__(self, step: int | tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        warmup = float(self.warmup_steps)
        after = step - warmup
        if self.kind == "cosine":
            progress = tf.minimum(after / max(self.total_steps - warmup, 1.0), 1.0)
            decayed = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        elif self.kind == "step":
            decayed = self.peak * self.decay_rate ** tf.floor(after / self.decay_steps)
        else:
            decayed = tf.constant(self.peak)
        return tf.where(step < warmup, self.peak * (step + 1.0) / max(warmup, 1.0), decayed)

    def get_config(self) -> dict[str, float | int | str]:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "kind": self.kind, "decay_steps": self.decay_steps, "decay_rate": self.decay_rate}


def make_optimizer(ctx: npu_utils.RunContext, args: argparse.Namespace,
                   schedule: keras.optimizers.schedules.LearningRateSchedule) -> keras.optimizers.Optimizer:
    """Adam (default) or TF1's RMSProp through ``ctx.wrap_optimizer``: loss scaling under float16 (--loss_scale:
    GPU's initial dynamic scale, Ascend's static scale; 0: none), the Ascend adapter's wrappers on NPU.

    --weight_decay_mode=decoupled applies --weight_decay as Keras 3's
    decoupled decay (``w -= lr * decay * w`` each step) to the weights not
    named in :data:`NO_WEIGHT_DECAY` (so also to the depthwise kernels), on
    both stacks (common/stack.py, decoupled_optimizer); --weight_decay_mode=l2
    (the paper's) is a term of the loss, on TF-slim's weights (:func:`l2_loss`, in runtime.metrics.make_loss).
    """
    optimizer_class, options = ((keras.optimizers.RMSprop, RMSPROP) if args.optimizer == "rmsprop"
                                else (keras.optimizers.Adam, {}))
    decoupled = args.weight_decay if args.weight_decay_mode == "decoupled" else 0.0
    optimizer = stack.decoupled_optimizer(optimizer_class, schedule, decoupled, NO_WEIGHT_DECAY, **options)
    if args.loss_scale and not ctx.precision.loss_scaling:
        print(f"[train] warning: --loss_scale has no effect with precision {ctx.precision.policy} "
              "(loss scaling is for float16: allow_mix_precision or force_fp16, on GPU or Ascend)", flush=True)
    return ctx.wrap_optimizer(optimizer, initial_scale=args.loss_scale)


def _short_name(variable):
    """``"block0_expand/kernel:0"`` (Keras 2.6) or ``"kernel"`` (Keras 3) -> ``"kernel"``."""
    return variable.name.split("/")[-1].split(":")[0]


def decayed_kernels(model: keras.Model) -> list[keras.Variable | tf.Variable]:
    """The weights that --weight_decay_mode=l2 decays, as TF-slim's MobileNet ``training_scope`` sets its
    regularisers: the kernels of the trainable Conv2D and Dense layers of ``model`` (a flat functional model).

    Not the depthwise kernels (TF-slim gives ``separable_conv2d`` no
    regulariser), BN scales and offsets, or biases (``l2_regularizer`` is a
    ``weights_regularizer`` only). A layer frozen by --freeze_backbone_epochs
    is left out while it is frozen, as its weights do not change then.
    """
    return [layer.kernel for layer in model.layers
            # DepthwiseConv2D is a subclass of Conv2D in Keras 2.6: ruled out first.
            if layer.trainable and not isinstance(layer, keras.layers.DepthwiseConv2D)
            and isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]


def l2_loss(model: keras.Model, weight_decay: float) -> tf.Tensor | float:
    """``weight_decay * sum(||w||^2 / 2)`` over :func:`decayed_kernels` of ``model`` (TF-slim's
    ``l2_regularizer``, summed as ``tf.losses.get_regularization_loss`` does); 0.0 without weight decay."""
    kernels = decayed_kernels(model) if weight_decay else []
    if not kernels:
        return 0.0
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(kernel, tf.float32)) for kernel in kernels])


def averaged_variables(model: keras.Model) -> list[keras.Variable | tf.Variable]:
    """What --ema_momentum averages: the trainable weights and BatchNormalization's moving statistics."""
    statistics = [v for v in model.non_trainable_weights if _short_name(v) in BN_STATISTICS]
    return list(model.trainable_weights) + statistics


class MovingAverage:
    """TF's ``tf.train.ExponentialMovingAverage(decay, num_updates=step)`` of ``variables``, as the paper's
    TF1 trainers applied it after each step's update.

    After step ``n`` (1, 2, ...) every average moves by
    ``average -= (1 - d) * (average - value)`` with
    ``d = min(decay, (1 + n) / (10 + n))``: the warm-up lets a short run's
    average follow the weights. The averages start at the values of
    :meth:`reset` (the weights training starts from). Create it inside the
    strategy's scope; :attr:`averages` go into the checkpoint.
    """

    def __init__(self, variables: Iterable[keras.Variable | tf.Variable], decay: float) -> None:
        self.decay = float(decay)
        self.variables = list(variables)
        self.averages = [tf.Variable(v, trainable=False, name=f"average_{i}") for i, v in enumerate(self.variables)]
        self._update = tf.function(self._apply)

    def _apply(self, step):
        n = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
        for average, variable in zip(self.averages, self.variables):
            average.assign_sub((1.0 - decay) * (average - tf.cast(variable, average.dtype)))

    def update(self, step: tf.Tensor | tf.Variable) -> None:
        """Move the averages after optimizer step ``step`` (a tensor or tf.Variable: one trace)."""
        self._update(step)

    def reset(self) -> None:
        """Start the averages at the variables' current values."""
        for average, variable in zip(self.averages, self.variables):
            average.assign(variable)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """Inside the block the variables hold their averages, then their own values again."""
        current = [variable.numpy() for variable in self.variables]
        for average, variable in zip(self.averages, self.variables):
            variable.assign(average)
        try:
            yield
        finally:
            for variable, value in zip(self.variables, current):
                variable.assign(value)
