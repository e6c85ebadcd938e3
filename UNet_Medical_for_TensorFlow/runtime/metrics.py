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
"""Loss (cross-entropy + 1 - soft Dice + L2), the evaluation metrics, the ISBI 2012 challenge's scores, the
benchmark statistics; METRIC lines.

As NVIDIA's TF2 UNet_Medical: soft Dice per sample and class is
``(2 * sum(p * t) + eps) / (sum(p^2) + sum(t^2) + eps)`` with p = softmax,
averaged over the batch and the classes; ``eval dice = 1 - dice loss``.

The ISBI 2012 challenge ranks by V_rand and V_info (Arganda-Carreras et al.,
"Crowdsourcing the creation of image segmentation algorithms for
connectomics", Front. Neuroanat. 2015; computed by Fiji's
trainableSegmentation.metrics RandError and VariationOfInformation, which the
challenge's evaluation script calls): see :func:`isbi_challenge_scores`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from scipy import ndimage

from common import npu_utils

if TYPE_CHECKING:  # for the hints only
    from common.stack import keras
    from runtime.training import RunLog

DICE_EPSILON = 1e-6
PERCENTILES = (90, 95, 99)  # of the benchmark's step latency


def soft_dice(probabilities: tf.Tensor, onehot: tf.Tensor, epsilon: float = DICE_EPSILON) -> tf.Tensor:
    """Mean soft Dice of (N, H, W, C) probabilities against one-hot labels (a scalar tensor)."""
    axes = [1, 2]
    intersection = tf.reduce_sum(probabilities * onehot, axis=axes)
    union = tf.reduce_sum(probabilities * probabilities + onehot * onehot, axis=axes)
    return tf.reduce_mean((2.0 * intersection + epsilon) / (union + epsilon))


def partial_losses(logits: tf.Tensor, onehot: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(cross_entropy, dice_loss)`` of (N, H, W, C) logits and one-hot labels, float32 scalars."""
    logits = tf.cast(logits, tf.float32)
    cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits))
    return cross_entropy, 1.0 - soft_dice(tf.nn.softmax(logits), onehot)


def weight_decay_loss(variables: Iterable[keras.Variable | tf.Variable], weight_decay: float) -> tf.Tensor:
    """``weight_decay * sum(||v||^2 / 2)`` over ``variables`` (NVIDIA's tf.nn.l2_loss over all weights)."""
    if not weight_decay:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])


def total_loss(logits: tf.Tensor, onehot: tf.Tensor, variables: Iterable[keras.Variable | tf.Variable],
               weight_decay: float) -> tf.Tensor:
    """Cross-entropy + (1 - soft Dice) + L2 weight decay, the training objective."""
    cross_entropy, dice_loss = partial_losses(logits, onehot)
    return cross_entropy + dice_loss + weight_decay_loss(variables, weight_decay)


def _soft_dice_per_class(probabilities, onehot):
    """(C,) soft Dice of one image's (H, W, C) probabilities against its one-hot labels (NVIDIA's formula)."""
    intersection = (probabilities * onehot).sum((0, 1))
    union = (probabilities * probabilities + onehot * onehot).sum((0, 1))
    return (2 * intersection + DICE_EPSILON) / (union + DICE_EPSILON)


def nvidia_eval_losses(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray], n_classes: int,
                       batch_size: int) -> dict[str, float]:
    """NVIDIA's evaluation figures, computed as its ``evaluate`` does.

    NVIDIA feeds the validation slices in batches of ``--batch_size`` (the
    last one smaller) and averages one value per batch (a ``keras.metrics.Mean``):
    ``eval_ce_loss``, the batch's softmax cross-entropy averaged over its
    pixels, and ``eval_dice_loss``, the mean over classes of (1 - mean over
    the batch of the soft Dice per image and class). ``eval_total_loss`` is
    their sum (no L2 term) and ``eval_dice_score`` is ``1 - eval_dice_loss``.
    The cross-entropy is taken from the probabilities, ``-log p`` of the true
    class (clipped at float32's smallest normal number, so a saturated
    softmax gives a large finite value where NVIDIA's on logits is exact).

    Args:
      probabilities: list of (H, W, C) softmax outputs, one per image, in order.
      labels: list of (H, W) int class maps of the same sizes.
      n_classes: C.
      batch_size: images per evaluation batch.
    Returns:
      dict of floats: eval_ce_loss, eval_dice_loss, eval_total_loss, eval_dice_score.
    """
    cross_entropies, dice_losses = [], []
    tiny = np.finfo(np.float32).tiny
    for first in range(0, len(probabilities), batch_size):
        batch = [(np.asarray(p, np.float64), np.asarray(t)) for p, t in
                 zip(probabilities[first:first + batch_size], labels[first:first + batch_size])]
        true_class = np.concatenate([np.take_along_axis(p, t[..., None], -1).ravel() for p, t in batch])
        cross_entropies.append(np.mean(-np.log(np.maximum(true_class, tiny))))
        dice = np.stack([_soft_dice_per_class(p, np.eye(n_classes)[t]) for p, t in batch])
        dice_losses.append(np.mean(1.0 - dice.mean(axis=0)))
    ce_loss, dice_loss = float(np.mean(cross_entropies)), float(np.mean(dice_losses))
    return {"eval_ce_loss": ce_loss, "eval_dice_loss": dice_loss, "eval_total_loss": ce_loss + dice_loss,
            "eval_dice_score": 1.0 - dice_loss}


def segmentation_metrics(probabilities: Sequence[np.ndarray] | np.ndarray, labels: Sequence[np.ndarray] | np.ndarray,
                         n_classes: int) -> dict[str, float]:
    """Metrics of whole images at native resolution, averaged over images (of any sizes) and classes.

    Args:
      probabilities: list (or stacked array) of (H, W, C) float class probabilities.
      labels: list (or array) of (H, W) int class indices, the same sizes.
    Returns:
      dict: ``dice_soft`` (soft Dice, NVIDIA's formula, all images as one
      batch), ``dice`` (the same average of the argmax masks' Dice), ``iou``
      (Jaccard, same average), ``pixel_error`` (share of wrong pixels per
      image, averaged; ISBI's pixel error).
    """
    per_image = {"dice": [], "dice_soft": [], "iou": [], "pixel_error": []}
    for p, t in zip(probabilities, labels):
        p = np.asarray(p, np.float64)
        onehot = np.eye(n_classes)[t]
        hard = np.eye(n_classes)[p.argmax(-1)]
        per_image["dice_soft"].append(_soft_dice_per_class(p, onehot))
        per_image["dice"].append(_soft_dice_per_class(hard, onehot))
        intersection = (hard * onehot).sum((0, 1))
        union = np.maximum(hard, onehot).sum((0, 1))
        per_image["iou"].append((intersection + DICE_EPSILON) / (union + DICE_EPSILON))
        per_image["pixel_error"].append(np.mean(p.argmax(-1) != t))
    return {name: float(np.mean(values)) for name, values in per_image.items()}


def _challenge_thresholds():
    """The challenge script's thresholds: from 0.0 by 0.1 while <= 1.0, summed in floating point as its loop
    sums them, so that the last one is 0.9999999999999999 and keeps pixels of probability 1.0."""
    thresholds, threshold = [], 0.0
    while threshold <= 1.0:
        thresholds.append(threshold)
        threshold += 0.1
    return tuple(thresholds)


CHALLENGE_THRESHOLDS = _challenge_thresholds()


def segments(foreground: np.ndarray) -> np.ndarray:
    """4-connected components of a boolean (H, W) map (Fiji's connectedComponents(..., 4)).

    Returns an int (H, W) map: 0 outside ``foreground``, 1..K a segment each.
    """
    return ndimage.label(foreground)[0]  # scipy's default 2-D structure is the 4-neighbourhood


def thin_borders(labels: np.ndarray) -> np.ndarray:
    """Borders of an int (H, W) segment map thinned to at most one pixel: a seeded watershed on the flat border.

    Every segment grows into the 0 pixels around it breadth-first, one
    4-neighbour step at a time, all segments at once; a 0 pixel that two
    segments reach in the same step stays 0 (a dam) and stops both. So a
    border of odd width keeps its middle pixel and one of even width none
    (the two segments then touch but keep their labels). 0 pixels that no
    segment reaches stay 0. Returns the grown int (H, W) map.
    """
    labels = labels.copy()
    dams = np.zeros(labels.shape, bool)
    none = np.iinfo(labels.dtype).max
    while True:
        padded = np.pad(labels, 1)
        neighbours = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        highest = neighbours.max(axis=0)
        lowest = np.where(neighbours > 0, neighbours, none).min(axis=0)
        reached = (labels == 0) & ~dams & (highest > 0)
        if not reached.any():
            return labels
        dams |= reached & (lowest != highest)
        claimed = reached & (lowest == highest)
        labels[claimed] = highest[claimed]


def _overlap_table(true_segments, proposed_segments):
    """Pixel counts of the ground truth's foreground: row i-1 for true segment i, column j for proposed segment j
    (column 0: the proposal's border pixels). A (K, L + 1) float array."""
    inside = true_segments > 0
    rows, columns = true_segments[inside] - 1, proposed_segments[inside]
    shape = (int(true_segments.max()), int(proposed_segments.max()) + 1)
    return np.bincount(rows * shape[1] + columns, minlength=shape[0] * shape[1]).reshape(shape).astype(np.float64)


def rand_pair_counts(true_segments: np.ndarray, proposed_segments: np.ndarray) -> tuple[float, float, float]:
    """Foreground-restricted Rand pair counts of one slice (Fiji's N^2 normalisation, in pixel pairs).

    Only pixels of the ground truth's foreground count; each border pixel of
    the proposal inside it is a segment of its own.

    Args:
      true_segments, proposed_segments: int (H, W) segment maps, 0 = border.
    Returns:
      ``(both, true, proposed)``: ordered pixel pairs (a pixel with itself
      included) in one segment in both maps, in the ground truth, in the proposal.
    """
    table = _overlap_table(true_segments, proposed_segments)
    singles = table[:, 0].sum()
    joint = table[:, 1:]
    return ((joint ** 2).sum() + singles, (table.sum(axis=1) ** 2).sum(), (joint.sum(axis=0) ** 2).sum() + singles)


def _entropy(probabilities):
    probabilities = probabilities[probabilities > 0]
    return float(-(probabilities * np.log(probabilities)).sum())


def information_score(true_segments: np.ndarray, proposed_segments: np.ndarray) -> float:
    """Foreground-restricted information-theoretic score of one slice: ``2 I(T;S) / (H(T) + H(S))``.

    The F-score of Fiji's split and merge scores ``I/H(T)`` and ``I/H(S)``
    over the ground truth's foreground, each border pixel of the proposal a
    segment of its own; 0 when either map is one segment (H = 0), as Fiji sets it.

    Args:
      true_segments, proposed_segments: int (H, W) segment maps, 0 = border.
    """
    table = _overlap_table(true_segments, proposed_segments)
    total = table.sum()
    probabilities = table / total
    singles = probabilities[:, 0].sum() * np.log(total)  # each border pixel: (1/n) log n
    h_true = _entropy(probabilities.sum(axis=1))
    h_proposed = _entropy(probabilities[:, 1:].sum(axis=0)) + singles
    h_joint = _entropy(probabilities[:, 1:].ravel()) + singles
    if h_true == 0 or h_proposed == 0:
        return 0.0
    return 2 * (h_true + h_proposed - h_joint) / (h_true + h_proposed)


def isbi_challenge_scores(cell_probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, float]:
    """The ISBI 2012 challenge's V_rand and V_info, each the best over the challenge's thresholds.

    At each threshold of :data:`CHALLENGE_THRESHOLDS` a slice's segments are
    the 4-connected components of its pixels above it (the non-membrane
    region), their borders thinned (:func:`thin_borders`); the ground truth's
    are the components of its cell pixels. V_rand is the F-score of the
    foreground-restricted Rand pair counts summed over the slices
    (:func:`rand_pair_counts`, Fiji sums them so), V_info the mean over
    slices of :func:`information_score` (Fiji averages per slice). Slices
    without ground-truth foreground are left out. 1 is perfect.

    Args:
      cell_probabilities: list of (H, W) float maps in [0, 1], each pixel's
        probability of cell interior (the challenge's submission: 0 = membrane).
      labels: list of (H, W) int class maps of the same sizes, 1 = cell, 0 = membrane.
    Returns:
      dict: ``v_rand``, ``v_rand_threshold``, ``v_info``, ``v_info_threshold``
      (the first threshold of the best score); empty when no slice has foreground.
    """
    pairs = [(p, segments(t > 0)) for p, t in zip(cell_probabilities, labels) if np.any(t > 0)]
    if not pairs:
        return {}
    best = {"v_rand": (-1.0, None), "v_info": (-1.0, None)}
    for threshold in CHALLENGE_THRESHOLDS:
        proposals = [thin_borders(segments(p > threshold)) for p, _ in pairs]
        both, true, proposed = np.sum([rand_pair_counts(t, s) for (_, t), s in zip(pairs, proposals)], axis=0)
        scores = {"v_rand": 2 * both / (true + proposed),
                  "v_info": float(np.mean([information_score(t, s) for (_, t), s in zip(pairs, proposals)]))}
        best.update({name: (score, threshold) for name, score in scores.items() if score > best[name][0]})
    return {key: float(value) for name, (score, threshold) in best.items()
            for key, value in ((name, score), (f"{name}_threshold", threshold))}


def benchmark_statistics(step_seconds: Sequence[float], images_per_step: int, warmup_steps: int) -> dict[str, float]:
    """Throughput and latency of the steps after ``warmup_steps``.

    Args:
      step_seconds: wall time of each step, in order.
      images_per_step: global batch (batch size x ranks).
      warmup_steps: leading steps left out (tracing, compilation, caches).
    Returns:
      dict: ``throughput`` (images/s, mean over steps of images/step_time),
      ``latency_ms_mean`` and ``latency_ms_p90/p95/p99``.
    Raises:
      ValueError: no step left after the warm-up.
    """
    kept = np.asarray(step_seconds[warmup_steps:], np.float64)
    if kept.size == 0:
        raise ValueError(f"no step after the {warmup_steps} warm-up steps; raise --max_steps")
    stats = {"throughput": float(np.mean(images_per_step / kept)),
             "latency_ms_mean": float(kept.mean() * 1000)}
    stats.update({f"latency_ms_p{p}": float(np.percentile(kept, p) * 1000) for p in PERCENTILES})
    return stats


def report(log: RunLog, values: Mapping[str, float], step: int) -> None:

    """One METRIC line per figure of ``values`` ({name: float}) on stdout, and the same in ``log``
    (training.RunLog: JSON lines and TensorBoard) at ``step``."""
    for name, value in values.items():
        print(npu_utils.format_metric_line(name, value), flush=True)
    log.record(step, values)
