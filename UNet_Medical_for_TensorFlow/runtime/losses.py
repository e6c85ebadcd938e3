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
"""Loss (cross-entropy + 1 - soft Dice + L2) and the evaluation metrics.

As NVIDIA's TF2 UNet_Medical: soft Dice per sample and class is
``(2 * sum(p * t) + eps) / (sum(p^2) + sum(t^2) + eps)`` with p = softmax,
averaged over the batch and the classes; ``eval dice = 1 - dice loss``.
"""

import numpy as np
import tensorflow as tf

DICE_EPSILON = 1e-6


def soft_dice(probabilities, onehot, epsilon=DICE_EPSILON):
    """Mean soft Dice of (N, H, W, C) probabilities against one-hot labels (a scalar tensor)."""
    axes = [1, 2]
    intersection = tf.reduce_sum(probabilities * onehot, axis=axes)
    union = tf.reduce_sum(probabilities * probabilities + onehot * onehot, axis=axes)
    return tf.reduce_mean((2.0 * intersection + epsilon) / (union + epsilon))


def partial_losses(logits, onehot):
    """``(cross_entropy, dice_loss)`` of (N, H, W, C) logits and one-hot labels, float32 scalars."""
    logits = tf.cast(logits, tf.float32)
    cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits))
    return cross_entropy, 1.0 - soft_dice(tf.nn.softmax(logits), onehot)


def weight_decay_loss(variables, weight_decay):
    """``weight_decay * sum(||v||^2 / 2)`` over ``variables`` (NVIDIA's tf.nn.l2_loss over all weights)."""
    if not weight_decay:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])


def total_loss(logits, onehot, variables, weight_decay):
    """Cross-entropy + (1 - soft Dice) + L2 weight decay, the training objective."""
    cross_entropy, dice_loss = partial_losses(logits, onehot)
    return cross_entropy + dice_loss + weight_decay_loss(variables, weight_decay)


def segmentation_metrics(probabilities, labels, n_classes):
    """Metrics of whole slices at native resolution.

    Args:
      probabilities: (N, H, W, C) float class probabilities.
      labels: (N, H, W) int class indices.
    Returns:
      dict: ``dice_soft`` (NVIDIA's eval_dice_score), ``dice`` (same average
      over slices and classes, of the argmax masks), ``iou`` (Jaccard, same
      average), ``pixel_error`` (share of wrong pixels; ISBI's pixel error).
    """
    probabilities = np.asarray(probabilities, np.float64)
    onehot = np.eye(n_classes)[labels]
    hard = np.eye(n_classes)[probabilities.argmax(-1)]
    axes = (1, 2)

    def dice(p):
        return np.mean((2 * (p * onehot).sum(axes) + DICE_EPSILON) /
                       ((p * p).sum(axes) + (onehot * onehot).sum(axes) + DICE_EPSILON))

    intersection = (hard * onehot).sum(axes)
    union = np.maximum(hard, onehot).sum(axes)
    return {"dice": float(dice(hard)), "dice_soft": float(dice(probabilities)),
            "iou": float(np.mean((intersection + DICE_EPSILON) / (union + DICE_EPSILON))),
            "pixel_error": float(np.mean(probabilities.argmax(-1) != labels))}
