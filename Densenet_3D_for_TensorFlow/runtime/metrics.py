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
"""The training loss and the BraTS scores: Dice, sensitivity, specificity and HD95 for WT, TC and ET.

Regions of the BraTS label values {0, 1, 2, 4}: whole tumour WT = label > 0,
tumour core TC = label in {1, 4}, enhancing tumour ET = label == 4. A region
that is empty in exactly one of prediction and truth is scored as the BraTS
challenge scores it (Dice 0, HD95 373.13 mm) and counted per region; both
empty: Dice 1, HD95 0. Specificity counts the voxels of the brain mask
only (the non-zero voxels of the images). Over the cases, each metric gets
the summary rows BraTS reports: mean, sample standard deviation, median,
25th and 75th percentile, the 373.13 mm cases included.

With ``lesion_wise=True`` each region also gets BraTS 2023's lesion-wise
Dice and HD95 (:func:`lesion_wise_scores`).
"""

import csv

import numpy as np
import tensorflow as tf
from scipy import ndimage

from common.npu_utils import keras

REGIONS = {
    "wt": lambda label: label > 0,
    "tc": lambda label: (label == 1) | (label == 4),
    "et": lambda label: label == 4,
}
METRIC_NAMES = ("dice", "sensitivity", "specificity", "hd95")
# The BraTS challenge's HD95 of a region found in only one of prediction and
# truth: the diagonal of the 240x240x155 volume at 1 mm, sqrt(240^2+240^2+155^2).
HD95_ONE_EMPTY = 373.13
LESION_METRIC_NAMES = ("lesion_dice", "lesion_hd95")

# BraTS 2023 lesion-wise rules, adult glioma (BraTS-GLI) constants, from the challenge's evaluation code
# (https://github.com/rachitsaluja/BraTS-2023-Metrics): truth lesions are grown by 3 dilations with the
# 18-connected cross to decide which lesions are one and which predicted components touch them; a truth
# lesion of at most 50 mm^3 is left out; an unmatched lesion or component scores HD95 374 mm.
LESION_DILATIONS = 3
LESION_MIN_VOLUME_MM3 = 50.0
LESION_HD95_MISSED = 374.0
_COMPONENTS_26 = ndimage.generate_binary_structure(3, 3)
_DILATION_18 = ndimage.generate_binary_structure(3, 2)


def dice(prediction, truth):
    """2|P&T| / (|P| + |T|) of two bool masks; 1.0 when both are empty (nothing to find, nothing found)."""
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((prediction & truth).sum()) / total


def sensitivity(prediction, truth):
    """TP / (TP + FN); 1.0 when the truth is empty (nothing was missed)."""
    positives = int(truth.sum())
    if positives == 0:
        return 1.0
    return int((prediction & truth).sum()) / positives


def specificity(prediction, truth, brain=None):
    """TN / (TN + FP) over the voxels of the bool mask ``brain`` (None: the whole volume); 1.0 when there
    is no negative voxel. Outside the brain every voxel is a true negative, so counting them would put
    every case near 1."""
    negatives = ~truth if brain is None else brain & ~truth
    count = int(negatives.sum())
    if count == 0:
        return 1.0
    return int((negatives & ~prediction).sum()) / count


def _surface(mask):
    """The voxels of ``mask`` that its erosion by the 6-connected (face) cross removes; outside counts as empty."""
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)


def one_empty(prediction, truth):
    """True when exactly one of the two masks is empty (the region was missed, or found where there is none)."""
    return bool(prediction.any()) != bool(truth.any())


def hd95(prediction, truth, spacing=(1.0, 1.0, 1.0)):
    """95th percentile of the symmetric surface distances, in mm.

    ``prediction`` and ``truth`` are (X, Y, Z) bool masks; ``spacing`` is the
    voxel size in mm along X, Y, Z (the NIfTI zooms).

    The definitions of medpy's ``medpy.metric.binary.hd95`` (connectivity 1):
    a mask's surface is the mask minus its erosion by the 6-connected cross;
    the distances from every surface voxel of each mask to the nearest surface
    voxel of the other (Euclidean, scaled by ``spacing``) are pooled, and the
    95th percentile is NumPy's default (linear interpolation). BraTS
    conventions for empty masks: both empty 0.0; exactly one empty
    :data:`HD95_ONE_EMPTY` (373.13 mm).
    """
    if not prediction.any() and not truth.any():
        return 0.0
    if one_empty(prediction, truth):
        return HD95_ONE_EMPTY
    surface_p, surface_t = _surface(prediction), _surface(truth)
    to_t = ndimage.distance_transform_edt(~surface_t, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~surface_p, sampling=spacing)
    distances = np.concatenate([to_t[surface_p], to_p[surface_t]])
    return float(np.percentile(distances, 95))


def lesion_wise_scores(prediction, truth, spacing=(1.0, 1.0, 1.0)):
    """BraTS 2023's lesion-wise Dice and HD95 (mm) of one region, as its evaluation code computes them.

    ``prediction`` and ``truth`` are (X, Y, Z) bool masks; ``spacing`` the voxel size in mm along X, Y, Z.

    1. Truth lesions: the connected components (26-connectivity) of the truth
       dilated :data:`LESION_DILATIONS` times (18-connected cross); a lesion is
       the truth voxels inside one of them, so lesions closer than the
       dilation count as one.
    2. Predicted components: 26-connectivity. A component that meets a
       lesion's own dilation matches it; the lesion's Dice and HD95 are taken
       against the union of its matching components (no match: Dice 0,
       HD95 :data:`LESION_HD95_MISSED`, a false negative).
    3. Lesions of at most :data:`LESION_MIN_VOLUME_MM3` are left out (their
       matching components are not false positives either).
    4. Every component that matches no lesion is a false positive: Dice 0,
       HD95 374 mm.
    The scores are the means over kept lesions and false positives; with
    neither (e.g. both masks empty): Dice 1, HD95 0. Pairs are scored by
    :func:`dice` and :func:`hd95` (medpy's surface definition; the challenge
    code uses DeepMind's ``surface_distance``, which can differ slightly).

    Returns ``(dice, hd95)``.
    """
    def dilate(mask):
        return ndimage.binary_dilation(mask, structure=_DILATION_18, iterations=LESION_DILATIONS)

    grown, num_lesions = ndimage.label(dilate(truth), structure=_COMPONENTS_26)
    components, num_components = ndimage.label(prediction, structure=_COMPONENTS_26)
    voxel_mm3 = float(np.prod(spacing))
    matched, dices, distances = set(), [], []
    for index in range(1, num_lesions + 1):
        lesion = truth & (grown == index)
        hits = np.unique(components[dilate(lesion)])
        hits = hits[hits != 0]
        matched.update(hits.tolist())
        if lesion.sum() * voxel_mm3 <= LESION_MIN_VOLUME_MM3:
            continue
        found = np.isin(components, hits)
        dices.append(dice(found, lesion))
        distances.append(hd95(found, lesion, spacing) if hits.size else LESION_HD95_MISSED)
    false_positives = num_components - len(matched)
    count = len(dices) + false_positives
    if count == 0:
        return 1.0, 0.0
    return sum(dices) / count, (sum(distances) + false_positives * LESION_HD95_MISSED) / count


def case_metrics(prediction, truth, spacing=(1.0, 1.0, 1.0), brain=None, lesion_wise=False):
    """All metrics of one case from (X, Y, Z) label volumes in the BraTS values {0, 1, 2, 4}.

    ``spacing``: voxel size in mm along X, Y, Z (for HD95); ``brain``: (X, Y, Z)
    bool mask specificity is counted over (None: the whole volume);
    ``lesion_wise``: add BraTS 2023's lesion-wise Dice and HD95.

    Returns ``{"wt_dice": ..., "tc_hd95": ..., "et_one_empty": 0 or 1, ...}``:
    every :func:`metric_columns` entry and, per region, ``<region>_one_empty``.
    """
    results = {}
    for region, select in REGIONS.items():
        p, t = select(prediction), select(truth)
        results[f"{region}_dice"] = dice(p, t)
        results[f"{region}_sensitivity"] = sensitivity(p, t)
        results[f"{region}_specificity"] = specificity(p, t, brain)
        results[f"{region}_hd95"] = hd95(p, t, spacing)
        results[f"{region}_one_empty"] = int(one_empty(p, t))
        if lesion_wise:
            results[f"{region}_lesion_dice"], results[f"{region}_lesion_hd95"] = lesion_wise_scores(p, t, spacing)
    return results


def metric_columns(rows=()):
    """The per-region metric names: ``wt_dice``, ``wt_sensitivity``, ..., ``et_hd95``, and
    ``<region>_lesion_dice`` and ``_lesion_hd95`` when the first of ``rows`` has them."""
    names = METRIC_NAMES + (LESION_METRIC_NAMES if rows and "wt_lesion_dice" in rows[0] else ())
    return [f"{region}_{name}" for region in REGIONS for name in names]


def count_columns():
    """The per-region counts of cases with exactly one empty mask (HD95 373.13)."""
    return [f"{region}_one_empty" for region in REGIONS]


def mean_metrics(rows):
    """Mean of each metric over cases, and for each :func:`count_columns` entry the number of such cases."""
    means = {column: sum(row[column] for row in rows) / len(rows) if rows else float("nan")
             for column in metric_columns(rows)}
    means.update({column: sum(row[column] for row in rows) for column in count_columns()})
    return means


# The summary rows besides the mean, each a function of one metric's values over the cases (at least one).
# std: the sample standard deviation (n - 1; NaN for one case); percentiles: NumPy's linear interpolation.
SUMMARY_STATISTICS = {
    "std": lambda values: float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
    "median": lambda values: float(np.median(values)),
    "25quantile": lambda values: float(np.percentile(values, 25)),
    "75quantile": lambda values: float(np.percentile(values, 75)),
}


def summary_rows(rows):
    """The rows after the cases, each named in ``case``: ``mean`` (:func:`mean_metrics`, with the
    one-empty counts), then ``std``, ``median``, ``25quantile``, ``75quantile`` of every metric column."""
    values = {column: [row[column] for row in rows] for column in metric_columns(rows)}
    summary = [dict(mean_metrics(rows), case="mean")]
    for name, statistic in SUMMARY_STATISTICS.items():
        summary.append(dict({column: statistic(v) if v else float("nan") for column, v in values.items()},
                            case=name))
    return summary


def format_table(rows):
    """A per-case text table (Dice and HD95 of each region, lesion-wise too when the rows have them), the
    summary rows, and the one-empty counts."""
    columns = [c for c in metric_columns(rows) if c.endswith(("dice", "hd95"))]
    width = 16 if len(columns) > 6 else 11  # room for "wt_lesion_hd95"
    header = f"{'case':<32}" + "".join(f"{c:>{width}}" for c in columns)
    lines = [header]
    summary = summary_rows(rows)
    means = summary[0]
    for row in rows + summary:
        lines.append(f"{row['case'][:32]:<32}" + "".join(f"{row[c]:>{width}.4f}" for c in columns))
    counts = ", ".join(f"{region.upper()} {means[f'{region}_one_empty']}" for region in REGIONS)
    lines.append(f"cases with exactly one empty mask (HD95 {HD95_ONE_EMPTY} mm): {counts} of {len(rows)}")
    return "\n".join(lines)


def write_csv(path, rows):
    """Per-case rows (case, every metric, the 0/1 one-empty flags), then the :func:`summary_rows`.

    In the ``mean`` row the ``<region>_one_empty`` columns hold the number of
    such cases; the other summary rows leave them empty.
    """
    columns = ["case"] + metric_columns(rows) + count_columns()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows + summary_rows(rows):
            writer.writerow({c: (row.get(c, "") if c in ["case"] + count_columns() else f"{row[c]:.6f}")
                             for c in columns})


def make_loss_fn(model):
    """``loss_fn(images, labels) -> scalar``: CE of the 2-class head + CE of the 5-class head.

    images (N, X, Y, Z, 4) float32; labels (N, x, y, z) int32 in 0..4 over the
    labelled centre. Each CE is the mean over the local batch's voxels.
    """
    def cross_entropy(labels, logits):
        # The loss function, not the Loss class: under a tf.distribute strategy
        # the class divides by the replica count, and make_train_step averages already.
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    def loss_fn(images, labels):
        outputs = model(images, training=True)
        return cross_entropy(tf.cast(labels > 0, tf.int32), outputs["wt"]) + cross_entropy(labels, outputs["labels"])

    return loss_fn
