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
tumour core TC = label in {1, 4}, enhancing tumour ET = label == 4.
"""

import csv
import math

import numpy as np
from scipy import ndimage

REGIONS = {
    "wt": lambda label: label > 0,
    "tc": lambda label: (label == 1) | (label == 4),
    "et": lambda label: label == 4,
}
METRIC_NAMES = ("dice", "sensitivity", "specificity", "hd95")


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
    return mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3, 3), bool), border_value=0)


def hd95(prediction, truth, spacing=(1.0, 1.0, 1.0)):
    """95th percentile of the symmetric surface distances, in mm (the voxel ``spacing``).

    The distances from every surface voxel of one mask to the nearest surface
    voxel of the other, both ways, pooled. 0.0 when both masks are empty; NaN
    when exactly one is (the distance is undefined; means skip it).
    """
    if not prediction.any() and not truth.any():
        return 0.0
    if not prediction.any() or not truth.any():
        return math.nan
    surface_p, surface_t = _surface(prediction), _surface(truth)
    to_t = ndimage.distance_transform_edt(~surface_t, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~surface_p, sampling=spacing)
    distances = np.concatenate([to_t[surface_p], to_p[surface_t]])
    return float(np.percentile(distances, 95))


def case_metrics(prediction, truth, spacing=(1.0, 1.0, 1.0)):
    """All metrics of one case: ``{"wt_dice": ..., "tc_hd95": ..., ...}`` from BraTS-valued label volumes."""
    results = {}
    for region, select in REGIONS.items():
        p, t = select(prediction), select(truth)
        results[f"{region}_dice"] = dice(p, t)
        results[f"{region}_sensitivity"] = sensitivity(p, t)
        results[f"{region}_specificity"] = specificity(p, t)
        results[f"{region}_hd95"] = hd95(p, t, spacing)
    return results


def metric_columns():
    return [f"{region}_{name}" for region in REGIONS for name in METRIC_NAMES]


def mean_metrics(rows):
    """Mean of each metric over cases, skipping NaN (an HD95 with one empty mask)."""
    means = {}
    for column in metric_columns():
        values = [row[column] for row in rows if not math.isnan(row[column])]
        means[column] = sum(values) / len(values) if values else math.nan
    return means


def format_table(rows):
    """A per-case text table (Dice and HD95 of each region) with the mean as its last line."""
    columns = [f"{r}_{m}" for r in REGIONS for m in ("dice", "hd95")]
    header = f"{'case':<32}" + "".join(f"{c:>11}" for c in columns)
    lines = [header]
    for row in rows + [dict(mean_metrics(rows), case="mean")]:
        lines.append(f"{row['case'][:32]:<32}" + "".join(f"{row[c]:>11.4f}" for c in columns))
    return "\n".join(lines)


def write_csv(path, rows):
    """Per-case rows (case + every metric) and a final ``mean`` row."""
    columns = ["case"] + metric_columns()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows + [dict(mean_metrics(rows), case="mean")]:
            writer.writerow({c: (row[c] if c == "case" else f"{row[c]:.6f}") for c in columns})
