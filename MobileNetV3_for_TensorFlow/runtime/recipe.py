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
"""What a training run optimises and how: the learning-rate schedule, the optimizer, the loss."""

import contextlib
import math

import tensorflow as tf

from common import npu_utils
from common.npu_utils import keras
from data_loading.folders import IGNORE_LABEL

# The paper's RMSProp: momentum 0.9; rho and epsilon as in TF-slim's MobileNet recipes.
RMSPROP = {"rho": 0.9, "momentum": 0.9, "epsilon": 1e-3}
# Weights that weight decay leaves alone (as TF-slim's l2 regulariser did): BN scales and offsets, biases.
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then cosine decay to 0, step decay, or constant.

    Args:
      peak: learning rate at the end of the warm-up.
      total_steps, warmup_steps, decay_steps: in optimizer steps.
      kind: "cosine", "step" or "constant".
      decay_rate: step schedule factor every ``decay_steps``.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, kind="cosine", decay_steps=1, decay_rate=1.0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)
        self.kind, self.decay_steps, self.decay_rate = kind, max(int(decay_steps), 1), float(decay_rate)

    def __call__(self, step):
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

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "kind": self.kind, "decay_steps": self.decay_steps, "decay_rate": self.decay_rate}


def make_optimizer(ctx, args, schedule):
    """Adam (default) or RMSProp through ``ctx.wrap_optimizer``: dynamic loss scaling under float16
    (--loss_scale=0: none), the Ascend adapter's wrappers on NPU.

    --weight_decay is Keras 3's decoupled decay (``w -= lr * decay * w`` each
    step), applied to conv kernels only (not to BN, biases); --ema_momentum
    keeps a moving average of the weights (see :func:`averaged_weights`).
    Both work the same on the two stacks (common/stack.py, decoupled_optimizer).
    """
    optimizer_class, options = ((keras.optimizers.RMSprop, RMSPROP) if args.optimizer == "rmsprop"
                                else (keras.optimizers.Adam, {}))
    optimizer = npu_utils.decoupled_optimizer(optimizer_class, schedule, args.weight_decay, args.ema_momentum,
                                              NO_WEIGHT_DECAY, **options)
    if args.loss_scale and not ctx.precision.loss_scaling:
        print(f"[train] warning: --loss_scale has no effect with precision {ctx.precision.policy} "
              "(loss scaling is for float16 on GPU; the Ascend adapter scales itself)", flush=True)
    return ctx.wrap_optimizer(optimizer, initial_scale=args.loss_scale)


def make_loss(model, task, num_classes, label_smoothing):
    """``loss_fn(images, labels) -> scalar``: the mean over the local batch.

    Classification: categorical cross-entropy with label smoothing.
    Segmentation: pixel cross-entropy over pixels whose label is not 255.
    """
    if task == "segmentation":
        def loss_fn(images, masks):
            probabilities = model(images, training=True)
            valid = tf.not_equal(masks, IGNORE_LABEL)
            pixel_loss = keras.losses.sparse_categorical_crossentropy(tf.where(valid, masks, 0), probabilities)
            weight = tf.cast(valid, pixel_loss.dtype)
            return tf.reduce_sum(pixel_loss * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
        return loss_fn
    # The loss function, not the Loss class: under a tf.distribute strategy the
    # class divides by the replica count, and make_train_step averages already.
    def loss_fn(images, labels):
        per_image = keras.losses.categorical_crossentropy(tf.one_hot(labels, num_classes),
                                                          model(images, training=True),
                                                          label_smoothing=label_smoothing)
        return tf.reduce_mean(per_image)
    return loss_fn


@contextlib.contextmanager
def averaged_weights(optimizer, variables):
    """Inside the block ``variables`` hold the optimizer's moving averages (--ema_momentum), then their own values.

    Without a moving average the block changes nothing. ``variables`` are the
    ones the optimizer was built with (all trainable weights).
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # under a LossScaleOptimizer
    current = [variable.numpy() for variable in variables]
    if not npu_utils.overwrite_with_moving_average(inner, variables):
        yield
        return
    try:
        yield
    finally:
        for variable, value in zip(variables, current):
            variable.assign(value)
