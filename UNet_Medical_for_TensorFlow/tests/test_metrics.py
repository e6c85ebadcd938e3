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
"""Loss and metric values on hand-computed tensors; benchmark statistics."""

import math

import numpy as np
import pytest
import tensorflow as tf

from runtime import metrics


def test_loss_on_known_values():
    # One pixel, logits (0, 0), label class 1: softmax (0.5, 0.5).
    logits = tf.zeros((1, 1, 1, 2))
    onehot = tf.constant([[[[0.0, 1.0]]]])
    cross_entropy, dice_loss = metrics.partial_losses(logits, onehot)
    assert float(cross_entropy) == pytest.approx(math.log(2), rel=1e-6)
    # Dice: class 0 (1e-6) / (0.25 + 1e-6) ~ 4e-6; class 1 (2 * 0.5) / (0.25 + 1) = 0.8.
    expected_dice = (1e-6 / (0.25 + 1e-6) + (1.0 + 1e-6) / (1.25 + 1e-6)) / 2
    assert float(dice_loss) == pytest.approx(1 - expected_dice, rel=1e-6)
    variables = [tf.Variable([1.0, 2.0])]
    assert float(metrics.weight_decay_loss(variables, 0.1)) == pytest.approx(0.25)  # 0.1 * (1 + 4) / 2
    total = metrics.total_loss(logits, onehot, variables, 0.1)
    assert float(total) == pytest.approx(math.log(2) + 1 - expected_dice + 0.25, rel=1e-6)


def test_confident_correct_logits_give_small_loss():
    onehot = tf.one_hot([[[0, 1], [1, 1]]], 2)
    cross_entropy, dice_loss = metrics.partial_losses((onehot * 2 - 1) * 20.0, onehot)
    assert float(cross_entropy) < 1e-6 and float(dice_loss) < 1e-6


def test_metrics_on_known_masks():
    labels = np.array([[[0, 1], [1, 1]]])
    predicted = np.array([[[0, 1], [0, 1]]])
    probabilities = np.eye(2)[predicted]
    scores = metrics.segmentation_metrics(probabilities, labels, 2)
    # Class 0: intersection 1, |p| 2, |t| 1 -> Dice 2/3, IoU 1/2; class 1: 2, 2, 3 -> 4/5, 2/3.
    assert scores["dice"] == pytest.approx((2 / 3 + 4 / 5) / 2, rel=1e-5)
    assert scores["dice_soft"] == pytest.approx(scores["dice"], rel=1e-9)  # hard probabilities
    assert scores["iou"] == pytest.approx((1 / 2 + 2 / 3) / 2, rel=1e-5)
    assert scores["pixel_error"] == pytest.approx(0.25)
    soft = metrics.segmentation_metrics(np.full((1, 2, 2, 2), 0.5), labels, 2)
    # p = 0.5 everywhere: class 0 2*0.5/(1+1) = 0.5, class 1 2*1.5/(1+3) = 0.75.
    assert soft["dice_soft"] == pytest.approx(0.625, rel=1e-5)


def test_benchmark_statistics():
    stats = metrics.benchmark_statistics([9.0, 0.5, 0.25, 0.5, 0.25], images_per_step=2, warmup_steps=1)
    assert stats["throughput"] == pytest.approx((4 + 8 + 4 + 8) / 4)
    assert stats["latency_ms_mean"] == pytest.approx(375.0)
    assert stats["latency_ms_p99"] == pytest.approx(np.percentile([500, 250, 500, 250], 99))
    with pytest.raises(ValueError, match="warm-up"):
        metrics.benchmark_statistics([1.0], 1, warmup_steps=1)


def test_nvidia_eval_losses_on_hand_made_arrays():
    """NVIDIA's eval_dice_score: per batch 1 - mean over classes of (1 - batch mean Dice), averaged over batches."""
    labels = [np.array([[0, 1]]), np.array([[0, 1]]), np.array([[1, 1]])]
    probabilities = [np.array([[[0.5, 0.5], [0.5, 0.5]]]),  # Dice 2 * 0.5 / (0.5 + 1) = 2/3 for both classes
                     np.array([[[1.0, 0.0], [0.0, 1.0]]]),  # perfect: 1, 1
                     np.array([[[0.2, 0.8], [0.2, 0.8]]])]  # class 0 absent: eps / (0.08 + eps); class 1 3.2 / 3.28
    eps = 1e-6
    image3 = [eps / (0.08 + eps), (3.2 + eps) / (3.28 + eps)]
    first_batch = np.mean([(1 + eps) / (1.5 + eps)] * 2 + [1.0, 1.0])
    expected = (first_batch + np.mean(image3)) / 2  # batches of 2: {0, 1} and {2}, one value each
    assert metrics.nvidia_eval_losses(probabilities, labels, 2, batch_size=2)["eval_dice_score"] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.660572, abs=1e-6)
    # One batch of all three: the plain mean over images and classes, which differs.
    one_batch = metrics.nvidia_eval_losses(probabilities, labels, 2, batch_size=8)["eval_dice_score"]
    assert one_batch == pytest.approx((4 * first_batch + sum(image3)) / 6, abs=1e-9)
    # The training loss's soft Dice (TensorFlow) is the same figure on a batch.
    onehot = tf.one_hot(np.stack(labels[:2]), 2)
    assert float(metrics.soft_dice(tf.constant(np.stack(probabilities[:2]), tf.float32), onehot)) == pytest.approx(
        metrics.nvidia_eval_losses(probabilities[:2], labels[:2], 2, batch_size=2)["eval_dice_score"], rel=1e-6)


def test_nvidia_eval_losses_are_nvidias_partial_losses_per_batch():
    """eval_ce_loss and eval_dice_loss: the mean over batches of partial_losses on the logits (NVIDIA's)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (5, 6, 6, 2)).astype(np.float32)
    labels = rng.integers(0, 2, (5, 6, 6))
    probabilities = list(tf.nn.softmax(logits).numpy())
    figures = metrics.nvidia_eval_losses(probabilities, list(labels), 2, batch_size=2)
    batches = [metrics.partial_losses(tf.constant(logits[i:i + 2]), tf.one_hot(labels[i:i + 2], 2))
               for i in range(0, 5, 2)]
    expected_ce, expected_dice = (float(np.mean([float(b[k]) for b in batches])) for k in (0, 1))
    assert figures["eval_ce_loss"] == pytest.approx(expected_ce, rel=1e-5)
    assert figures["eval_dice_loss"] == pytest.approx(expected_dice, rel=1e-5)
    assert figures["eval_total_loss"] == pytest.approx(expected_ce + expected_dice, rel=1e-5)
    assert figures["eval_dice_score"] == pytest.approx(1 - figures["eval_dice_loss"])


def test_metrics_of_images_of_different_sizes_are_averaged_per_image():
    small, large = np.array([[0, 1]]), np.ones((3, 3), int)
    probabilities = [np.eye(2)[small], np.eye(2)[np.zeros((3, 3), int)]]  # right; all wrong
    scores = metrics.segmentation_metrics(probabilities, [small, large], 2)
    assert scores["pixel_error"] == pytest.approx(0.5)  # per image 0 and 1
    assert scores["dice"] == pytest.approx((1 + 1 + 1e-6 / (9 + 1e-6) + 1e-6 / (9 + 1e-6)) / 4)
