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
"""BraTS evaluation: Dice, sensitivity, specificity and HD95 for WT, TC and ET.

Regions of the BraTS label values {0, 1, 2, 4}: whole tumour WT = label > 0,
tumour core TC = label in {1, 4}, enhancing tumour ET = label == 4. A region
that is empty in exactly one of prediction and truth is scored as the BraTS
challenge scores it (Dice 0, HD95 373.13 mm) and counted per region; both
empty: Dice 1, HD95 0. Over the cases, each metric gets the summary rows
BraTS reports: mean, standard deviation, median, 25th and 75th percentile,
the 373.13 mm cases included.
"""

import csv

import numpy as np
from scipy import ndimage

REGIONS = {
    "wt": lambda label: label > 0,
    "tc": lambda label: (label == 1) | (label == 4),
    "et": lambda label: label == 4,
}
METRIC_NAMES = ("dice", "sensitivity", "specificity", "hd95")
# The BraTS challenge's HD95 of a region found in only one of prediction and
# truth: the diagonal of the 240x240x155 volume at 1 mm, sqrt(240^2+240^2+155^2).
HD95_ONE_EMPTY = 373.13


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


def specificity(prediction, truth):
    """TN / (TN + FP) over the whole volume; 1.0 when every voxel is positive."""
    negatives = int((~truth).sum())
    if negatives == 0:
        return 1.0
    return int((~prediction & ~truth).sum()) / negatives


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


def case_metrics(prediction, truth, spacing=(1.0, 1.0, 1.0)):
    """All metrics of one case from (X, Y, Z) label volumes in the BraTS values {0, 1, 2, 4}.

    ``spacing``: voxel size in mm along X, Y, Z (for HD95).

    Returns ``{"wt_dice": ..., "tc_hd95": ..., "et_one_empty": 0 or 1, ...}``:
    every :func:`metric_columns` entry and, per region, ``<region>_one_empty``.
    """
    results = {}
    for region, select in REGIONS.items():
        p, t = select(prediction), select(truth)
        results[f"{region}_dice"] = dice(p, t)
        results[f"{region}_sensitivity"] = sensitivity(p, t)
        results[f"{region}_specificity"] = specificity(p, t)
        results[f"{region}_hd95"] = hd95(p, t, spacing)
        results[f"{region}_one_empty"] = int(one_empty(p, t))
    return results


def metric_columns():
    """The per-region metric names: ``wt_dice``, ``wt_sensitivity``, ..., ``et_hd95``."""
    return [f"{region}_{name}" for region in REGIONS for name in METRIC_NAMES]


def count_columns():
    """The per-region counts of cases with exactly one empty mask (HD95 373.13)."""
    return [f"{region}_one_empty" for region in REGIONS]


def mean_metrics(rows):
    """Mean of each metric over cases, and for each :func:`count_columns` entry the number of such cases."""
    means = {column: sum(row[column] for row in rows) / len(rows) if rows else float("nan")
             for column in metric_columns()}
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
    values = {column: [row[column] for row in rows] for column in metric_columns()}
    summary = [dict(mean_metrics(rows), case="mean")]
    for name, statistic in SUMMARY_STATISTICS.items():
        summary.append(dict({column: statistic(v) if v else float("nan") for column, v in values.items()},
                            case=name))
    return summary


def format_table(rows):
    """A per-case text table (Dice and HD95 of each region), the summary rows, and the one-empty counts."""
    columns = [f"{r}_{m}" for r in REGIONS for m in ("dice", "hd95")]
    header = f"{'case':<32}" + "".join(f"{c:>11}" for c in columns)
    lines = [header]
    summary = summary_rows(rows)
    means = summary[0]
    for row in rows + summary:
        lines.append(f"{row['case'][:32]:<32}" + "".join(f"{row[c]:>11.4f}" for c in columns))
    counts = ", ".join(f"{region.upper()} {means[f'{region}_one_empty']}" for region in REGIONS)
    lines.append(f"cases with exactly one empty mask (HD95 {HD95_ONE_EMPTY} mm): {counts} of {len(rows)}")
    return "\n".join(lines)


def write_csv(path, rows):
    """Per-case rows (case, every metric, the 0/1 one-empty flags), then the :func:`summary_rows`.

    In the ``mean`` row the ``<region>_one_empty`` columns hold the number of
    such cases; the other summary rows leave them empty.
    """
    columns = ["case"] + metric_columns() + count_columns()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows + summary_rows(rows):
            writer.writerow({c: (row.get(c, "") if c in ["case"] + count_columns() else f"{row[c]:.6f}")
                             for c in columns})
