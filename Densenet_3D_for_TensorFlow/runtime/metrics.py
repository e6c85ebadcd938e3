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
"""The training loss and the BraTS scores per region (WT, TC, ET), in one of two sets of conventions.

Regions of the BraTS label values {0, 1, 2, 4}: whole tumour WT = label > 0,
tumour core TC = label in {1, 4}, enhancing tumour ET = label == 4.

``brats`` (this repository's BraTS 2017 table, :func:`case_metrics`): Dice; sensitivity (1.0 when the truth
is empty); specificity over the brain mask only; HD95 by medpy's definition (``medpy.metric.binary.hd95``);
a region empty in exactly one of prediction and truth scores Dice 0 and HD95 373.13 mm, counted per region;
both empty: Dice 1, HD95 0.

``brats2023``: the columns of BraTS 2023's evaluation code in its conventions
(:mod:`runtime.scoring.brats2023`): legacy Dice and HD95 (DeepMind's surface distances, 374 mm for one
empty mask), sensitivity and specificity over the whole volume, lesion-wise Dice and HD95, the numbers of
true positive, false positive and false negative lesions, and the truth volume.

Over the cases, each metric gets the summary rows BraTS reports: mean, sample standard deviation, median,
25th and 75th percentile, the 373.13 / 374 mm cases included.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from scipy import ndimage

from common.stack import keras
from runtime.scoring import brats2023
from runtime.scoring.surfaces import bounding_box

REGIONS = {
    "wt": lambda label: label > 0,
    "tc": lambda label: (label == 1) | (label == 4),
    "et": lambda label: label == 4,
}
METRIC_NAMES = ("dice", "sensitivity", "specificity", "hd95")
# The BraTS challenge's HD95 of a region found in only one of prediction and
# truth: the diagonal of the 240x240x155 volume at 1 mm, sqrt(240^2+240^2+155^2).
HD95_ONE_EMPTY = 373.13
SCORES = ("brats", "brats2023")  # the --metrics choices
# The columns the printed table shows per region (metrics.csv has every column).
TABLE_NAMES = {"brats": ("dice", "hd95", "sensitivity", "specificity"),
               "brats2023": ("dice", "hd95", "sensitivity", "specificity", "lesion_dice", "lesion_hd95")}
TABLE_TITLES = {
    "brats": "BraTS 2017 conventions: HD95 by medpy's definition (373.13 mm when one mask is empty), "
             "specificity over the brain, sensitivity 1 for an empty truth",
    "brats2023": "BraTS 2023 evaluation code's conventions: HD95 by DeepMind's surface distances (374 mm when "
                 "one mask is empty), specificity over the volume, sensitivity 0 for an empty truth, "
                 "lesion-wise scores of adult glioma",
}


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """2|P&T| / (|P| + |T|) of two bool masks; 1.0 when both are empty (nothing to find, nothing found)."""
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((prediction & truth).sum()) / total


def sensitivity(prediction: np.ndarray, truth: np.ndarray) -> float:
    """TP / (TP + FN); 1.0 when the truth is empty (nothing was missed)."""
    positives = int(truth.sum())
    if positives == 0:
        return 1.0
    return int((prediction & truth).sum()) / positives


def specificity(prediction: np.ndarray, truth: np.ndarray, brain: np.ndarray | None = None) -> float:
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


def one_empty(prediction: np.ndarray, truth: np.ndarray) -> bool:
    """True when exactly one of the two masks is empty (the region was missed, or found where there is none)."""
    return bool(prediction.any()) != bool(truth.any())


def hd95(prediction: np.ndarray, truth: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """95th percentile of the symmetric surface distances, in mm (the 2017 table's definition).

    ``prediction`` and ``truth`` are (X, Y, Z) bool masks; ``spacing`` is the
    voxel size in mm along X, Y, Z (the NIfTI zooms).

    The definitions of medpy's ``medpy.metric.binary.hd95`` (connectivity 1):
    a mask's surface is the mask minus its erosion by the 6-connected cross;
    the distances from every surface voxel of each mask to the nearest surface
    voxel of the other (Euclidean, scaled by ``spacing``) are pooled, and the
    95th percentile is NumPy's default (linear interpolation). BraTS
    conventions for empty masks: both empty 0.0; exactly one empty
    :data:`HD95_ONE_EMPTY` (373.13 mm). The distance transforms run inside the
    masks' bounding box plus one voxel: every surface voxel and its nearest one lie in it.
    """
    if not prediction.any() and not truth.any():
        return 0.0
    if one_empty(prediction, truth):
        return HD95_ONE_EMPTY
    box = bounding_box(prediction | truth, margin=1)
    surface_p, surface_t = _surface(prediction[box]), _surface(truth[box])
    to_t = ndimage.distance_transform_edt(~surface_t, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~surface_p, sampling=spacing)
    distances = np.concatenate([to_t[surface_p], to_p[surface_t]])
    return float(np.percentile(distances, 95))


def _region_metrics_2017(prediction, truth, spacing, brain):
    """``{name: value}`` of :data:`METRIC_NAMES` for one region's (X, Y, Z) bool masks, 2017 conventions."""
    return dict(dice=dice(prediction, truth), sensitivity=sensitivity(prediction, truth),
                specificity=specificity(prediction, truth, brain), hd95=hd95(prediction, truth, spacing))


def case_metrics(prediction: np.ndarray, truth: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                 brain: np.ndarray | None = None, scores: str = "brats") -> dict[str, float]:
    """All metrics of one case from (X, Y, Z) label volumes in the BraTS values {0, 1, 2, 4}.

    ``spacing``: voxel size in mm along X, Y, Z (for HD95 and volumes); ``brain``: (X, Y, Z)
    bool mask the 2017 specificity is counted over (None: the whole volume);
    ``scores``: ``brats`` (the 2017 table's conventions) or ``brats2023`` (the
    columns and conventions of BraTS 2023's evaluation code, ``brain`` unused).

    Returns ``{"wt_dice": ..., "tc_hd95": ..., "et_one_empty": 0 or 1, ...}``:
    every :func:`metric_columns` entry and, per region, ``<region>_one_empty``.
    """
    results = {}
    for region, select in REGIONS.items():
        p, t = select(prediction), select(truth)
        values = (brats2023.region_scores(p, t, spacing) if scores == "brats2023"
                  else _region_metrics_2017(p, t, spacing, brain))
        results.update({f"{region}_{name}": value for name, value in values.items()})
        results[f"{region}_one_empty"] = int(one_empty(p, t))
    return results


def scores_of(rows: Sequence[Mapping[str, float | str]]) -> str:
    """Which conventions the rows of :func:`case_metrics` follow: ``brats`` or ``brats2023``."""
    return "brats2023" if rows and "wt_lesion_dice" in rows[0] else "brats"


def metric_columns(rows: Sequence[Mapping[str, float | str]] = ()) -> list[str]:
    """The per-region metric names: ``wt_dice``, ``wt_sensitivity``, ..., ``et_hd95`` (2017), or
    ``wt_dice`` ... ``et_gt_volume`` (:data:`runtime.scoring.brats2023.COLUMNS`) when the first of ``rows``
    has lesion-wise columns."""
    names = brats2023.COLUMNS if scores_of(rows) == "brats2023" else METRIC_NAMES
    return [f"{region}_{name}" for region in REGIONS for name in names]


def count_columns() -> list[str]:
    """The per-region counts of cases with exactly one empty mask (HD95 373.13)."""
    return [f"{region}_one_empty" for region in REGIONS]


def mean_metrics(rows: Sequence[Mapping[str, float | str]]) -> dict[str, float]:
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


def summary_rows(rows: Sequence[Mapping[str, float | str]]) -> list[dict[str, float | str]]:
    """The rows after the cases, each named in ``case``: ``mean`` (:func:`mean_metrics`, with the
    one-empty counts), then ``std``, ``median``, ``25quantile``, ``75quantile`` of every metric column."""
    values = {column: [row[column] for row in rows] for column in metric_columns(rows)}
    summary = [dict(mean_metrics(rows), case="mean")]
    for name, statistic in SUMMARY_STATISTICS.items():
        summary.append(dict({column: statistic(v) if v else float("nan") for column, v in values.items()},
                            case=name))
    return summary


def _short(column):
    """A table header for a column: ``wt_sensitivity`` -> ``wt_sens``, ``et_lesion_hd95`` -> ``et_les_hd95``."""
    return column.replace("sensitivity", "sens").replace("specificity", "spec").replace("lesion", "les")


def format_table(rows: Sequence[Mapping[str, float | str]]) -> str:
    """A text table: a line naming the conventions, per case Dice, HD95, sensitivity and specificity of each
    region (and lesion-wise Dice and HD95 with ``brats2023`` rows), the summary rows, the one-empty counts."""
    scores = scores_of(rows)
    columns = [f"{region}_{name}" for region in REGIONS for name in TABLE_NAMES[scores]]
    width = max(len(_short(c)) for c in columns) + 2
    lines = [f"scores in the {TABLE_TITLES[scores]}",
             f"{'case':<32}" + "".join(f"{_short(c):>{width}}" for c in columns)]
    summary = summary_rows(rows)
    means = summary[0]
    for row in rows + summary:
        lines.append(f"{row['case'][:32]:<32}" + "".join(f"{row[c]:>{width}.4f}" for c in columns))
    missed = HD95_ONE_EMPTY if scores == "brats" else brats2023.HD95_MISSED
    counts = ", ".join(f"{region.upper()} {means[f'{region}_one_empty']}" for region in REGIONS)
    lines.append(f"cases with exactly one empty mask (HD95 {missed:g} mm): {counts} of {len(rows)}")
    return "\n".join(lines)


def write_csv(path: str, rows: Sequence[Mapping[str, float | str]]) -> None:
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


def make_loss_fn(model: keras.Model) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:

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
