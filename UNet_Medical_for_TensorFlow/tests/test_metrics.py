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
"""Loss and metric values on hand-computed tensors; NVIDIA's evaluation order; the ISBI 2012 challenge's
V_rand and V_info on hand cases and against a brute-force count; benchmark statistics."""

import collections
import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from data_loading import folds
from runtime import metrics
from test_data import nvidia_fold


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


@pytest.mark.parametrize("batch_size", [4, 5])
def test_nvidia_fold_is_evaluated_in_nvidias_order(batch_size):
    """6 validation slices in batches of 4 or 5: NVIDIA's figures need its order, which the fold keeps."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (30, 6, 6, 2)).astype(np.float32)
    labels = rng.integers(0, 2, (30, 6, 6))
    _, nvidia_order = nvidia_fold(30, 2, seed=0)
    validation = folds.fold_split(30, 2, seed=0, scheme="nvidia")[1]
    assert validation == nvidia_order.tolist()
    batches = [nvidia_order[i:i + batch_size] for i in range(0, len(nvidia_order), batch_size)]
    expected = 1 - np.mean([float(metrics.partial_losses(tf.constant(logits[b]), tf.one_hot(labels[b], 2))[1])
                            for b in batches])
    probabilities = tf.nn.softmax(logits).numpy()

    def dice_score(order):
        return metrics.nvidia_eval_losses([probabilities[i] for i in order], [labels[i] for i in order], 2,
                                          batch_size)["eval_dice_score"]

    assert dice_score(validation) == pytest.approx(expected, abs=1e-6)
    assert abs(dice_score(sorted(validation)) - expected) > 1e-4  # the sorted order gives another figure


def test_challenge_thresholds_are_the_challenge_scripts():
    """Fiji's loop: from 0.0 by 0.1 while <= 1.0, in floating point (11 thresholds, the last just under 1)."""
    assert len(metrics.CHALLENGE_THRESHOLDS) == 11
    assert metrics.CHALLENGE_THRESHOLDS[0] == 0.0 and 0.9999 < metrics.CHALLENGE_THRESHOLDS[-1] < 1.0


def test_thin_borders_leaves_at_most_one_pixel_between_segments():
    odd = np.array([[1, 0, 0, 0, 2], [1, 0, 0, 0, 2]])
    assert metrics.thin_borders(odd).tolist() == [[1, 1, 0, 2, 2], [1, 1, 0, 2, 2]]
    even = np.array([[1, 0, 0, 0, 0, 2]])
    assert metrics.thin_borders(even).tolist() == [[1, 1, 1, 2, 2, 2]]
    # A border pixel between a segment and itself is absorbed; with no segment nothing grows.
    ring = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]])
    assert metrics.thin_borders(ring).tolist() == np.ones((3, 3), int).tolist()
    assert metrics.thin_borders(np.zeros((2, 2), int)).tolist() == [[0, 0], [0, 0]]


@pytest.mark.parametrize("true,proposed,v_rand,v_info", [
    # Perfect.
    ([[1, 1, 0, 2, 2]], [[1, 1, 0, 2, 2]], 1.0, 1.0),
    # Segment 2 half lost to the border: a singleton. Pairs: both 4 + 1 + 1 = 6, true 4 + 4 = 8,
    # proposed 4 + 1 + 1 = 6, V_rand = 12 / 14; I = ln 2, H(T) = ln 2, H(S) = 1.5 ln 2, V_info = 2 / 2.5.
    ([[1, 1, 0, 2, 2]], [[1, 1, 0, 2, 0]], 6 / 7, 0.8),
    # Two cells merged: both 8, true 8, proposed 16, V_rand = 2/3; one proposed segment, H(S) = 0: V_info 0 (Fiji).
    ([[1, 1, 0, 2, 2]], [[1, 1, 1, 1, 1]], 2 / 3, 0.0),
    # Pixels outside the ground truth's foreground do not count, whatever the proposal says there.
    ([[1, 1, 0, 0, 2]], [[1, 1, 3, 4, 2]], 1.0, 1.0),
])
def test_challenge_scores_of_hand_cases(true, proposed, v_rand, v_info):
    true, proposed = np.array(true), np.array(proposed)
    both, true_pairs, proposed_pairs = metrics.rand_pair_counts(true, proposed)
    assert 2 * both / (true_pairs + proposed_pairs) == pytest.approx(v_rand)
    assert metrics.information_score(true, proposed) == pytest.approx(v_info)


def _components(foreground):
    """4-connected components by flood fill, written independently of scipy: {pixel: component id}."""
    component, next_id = {}, 1
    for start in zip(*np.nonzero(foreground)):
        if start in component:
            continue
        stack = [start]
        component[start] = next_id
        while stack:
            row, col = stack.pop()
            for pixel in ((row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)):
                if (0 <= pixel[0] < foreground.shape[0] and 0 <= pixel[1] < foreground.shape[1]
                        and foreground[pixel] and pixel not in component):
                    component[pixel] = next_id
                    stack.append(pixel)
        next_id += 1
    return component


def _brute_force_scores(true_map, proposed_map):
    """Rand pair counts by enumerating every ordered pair of ground-truth foreground pixels, and the information
    score from counted cells, a proposal border pixel being its own segment."""
    true_ids = _components(true_map > 0)
    pixels = sorted(true_ids)
    proposed_ids = {p: int(proposed_map[p]) or -1 - index for index, p in enumerate(pixels)}  # border: its own
    both = sum(true_ids[a] == true_ids[b] and proposed_ids[a] == proposed_ids[b]
               for a, b in itertools.product(pixels, repeat=2))
    true_pairs = sum(true_ids[a] == true_ids[b] for a, b in itertools.product(pixels, repeat=2))
    proposed_pairs = sum(proposed_ids[a] == proposed_ids[b] for a, b in itertools.product(pixels, repeat=2))

    def entropy(counts):
        return -sum(c / len(pixels) * math.log(c / len(pixels)) for c in counts.values())

    h_true = entropy(collections.Counter(true_ids[p] for p in pixels))
    h_proposed = entropy(collections.Counter(proposed_ids[p] for p in pixels))
    h_joint = entropy(collections.Counter((true_ids[p], proposed_ids[p]) for p in pixels))
    info = 0.0 if min(h_true, h_proposed) == 0 else 2 * (h_true + h_proposed - h_joint) / (h_true + h_proposed)
    return (both, true_pairs, proposed_pairs), info


def test_challenge_scores_equal_a_brute_force_count_on_thresholded_thinned_random_maps():
    """Two 12x12 slices of noisy cell probabilities: at every threshold, the thinned proposal's pair counts and
    information score equal the brute-force ones, and the reported scores are the best over the thresholds."""
    rng = np.random.default_rng(3)
    labels = [np.ones((12, 12), int) for _ in range(2)]
    for label in labels:
        label[rng.integers(0, 12), :] = 0  # a membrane across, one down
        label[:, rng.integers(0, 12)] = 0
    probabilities = [np.clip(label + rng.normal(0, 0.45, label.shape), 0, 1) for label in labels]
    per_threshold = []
    for threshold in metrics.CHALLENGE_THRESHOLDS:
        counts, infos = np.zeros(3), []
        for probability, label in zip(probabilities, labels):
            proposed = metrics.thin_borders(metrics.segments(probability > threshold))
            brute_counts, brute_info = _brute_force_scores(label, proposed)
            assert metrics.rand_pair_counts(metrics.segments(label > 0), proposed) == pytest.approx(brute_counts)
            assert metrics.information_score(metrics.segments(label > 0), proposed) == pytest.approx(brute_info)
            counts += brute_counts
            infos.append(brute_info)
        per_threshold.append((2 * counts[0] / (counts[1] + counts[2]), float(np.mean(infos))))
    scores = metrics.isbi_challenge_scores(probabilities, labels)
    for index, name in enumerate(("v_rand", "v_info")):
        values = [figures[index] for figures in per_threshold]
        assert scores[name] == pytest.approx(max(values))
        assert scores[f"{name}_threshold"] == metrics.CHALLENGE_THRESHOLDS[int(np.argmax(values))]
    assert len({figures for figures in per_threshold}) > 3  # the thresholds matter on this case
    assert metrics.isbi_challenge_scores(probabilities, [np.zeros((12, 12), int)] * 2) == {}


def test_challenge_scores_of_a_perfect_probability_map_are_one():
    label = np.ones((9, 9), int)
    label[4, :] = label[:, 4] = 0
    scores = metrics.isbi_challenge_scores([label.astype(np.float32)], [label])
    assert scores == {"v_rand": 1.0, "v_rand_threshold": 0.0, "v_info": 1.0, "v_info_threshold": 0.0}
