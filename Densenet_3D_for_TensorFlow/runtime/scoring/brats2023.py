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
"""The per-region columns of BraTS 2023's evaluation code (``rachitsaluja/BraTS-2023-Metrics``, ``eval.py``),
adult glioma (BraTS-GLI) rules, with that code's conventions; written from its published formulas.

For one region's (X, Y, Z) bool masks and the voxel size ``spacing`` (mm along X, Y, Z):

- ``dice`` (its Legacy_Dice): 2|P & T| / (|P| + |T|); both empty 1.
- ``hd95`` (Legacy_HD95): :func:`.surfaces.robust_hausdorff` at 95 %; both empty 0; one empty
  :data:`HD95_MISSED` (its infinity replaced by 374).
- ``sensitivity`` TP / (TP + FN): 1 when both masks are empty, 0 when only the truth is; ``specificity``
  TN / (TN + FP) over the whole volume (0 when there is no negative voxel).
- ``gt_volume`` (GT_Complete_Volume): truth voxels x the voxel volume, mm^3.
- Lesion-wise (:func:`lesion_wise`): ``lesion_dice``, ``lesion_hd95``, ``num_tp``, ``num_fp``, ``num_fn``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from runtime.scoring.surfaces import bounding_box, robust_hausdorff, surface_distances

COLUMNS = ("dice", "hd95", "sensitivity", "specificity", "lesion_dice", "lesion_hd95", "num_tp", "num_fp",
           "num_fn", "gt_volume")
# BraTS-GLI: truth lesions grow by 3 dilations with the 18-connected cross to decide which lesions are one and
# which predicted components touch them; a truth lesion of at most 50 mm^3 is left out; the code's infinite
# HD95 (a missed lesion, a false positive, an empty mask) counts as 374 mm.
LESION_DILATIONS = 3
LESION_MIN_VOLUME_MM3 = 50.0
HD95_MISSED = 374.0
_COMPONENTS_26 = ndimage.generate_binary_structure(3, 3)
_DILATION_18 = ndimage.generate_binary_structure(3, 2)


def hd95(prediction: np.ndarray, truth: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """Legacy_HD95 of two (X, Y, Z) bool masks in mm: 0 when both are empty, 374 when one is."""
    if not prediction.any() and not truth.any():
        return 0.0
    return _finite(robust_hausdorff(surface_distances(truth, prediction, spacing), 95.0))


def _finite(distance):
    """The code's replacement of an infinite distance (a mask without surface) by :data:`HD95_MISSED`."""
    return distance if np.isfinite(distance) else HD95_MISSED


def sensitivity_specificity(prediction: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``(sensitivity, specificity)`` of two bool masks in the code's conventions (module docstring)."""
    predicted, actual = int(np.count_nonzero(prediction)), int(np.count_nonzero(truth))
    true_positives = int(np.count_nonzero(prediction & truth))
    negatives = truth.size - actual
    true_negatives = negatives - (predicted - true_positives)
    if predicted == 0 and actual == 0:
        sensitivity = 1.0
    else:  # the code divides by TP + FN + the smallest float: 0 / tiny = 0 for an empty truth
        sensitivity = true_positives / actual if actual else 0.0
    return sensitivity, (true_negatives / negatives if negatives else 0.0)


def _voxel_volume(count, spacing):
    """``count`` voxels in mm^3, multiplied in the code's order (count x sx x sy x sz)."""
    sx, sy, sz = (float(s) for s in spacing)
    return count * sx * sy * sz


def _score_lesion(index, region, truth, grown, components, component_boxes, spacing):
    """``(hits, volume_mm3, dice, hd95)`` of truth lesion ``index``: the truth voxels of ``grown == index``
    (``region``: the slices of that dilated component, which is the lesion's own dilation) against the union
    of the predicted components ``hits`` (an int array of labels of ``components``) that meet it."""
    reach = grown[region] == index
    hits = np.unique(components[region][reach])
    hits = hits[hits != 0]
    volume = _voxel_volume(int(np.count_nonzero(truth[region] & reach)), spacing)
    if hits.size == 0:
        return hits, volume, 0.0, HD95_MISSED
    # Matching components may reach beyond the lesion's box: score both in the box holding all of them.
    boxes = [region] + [component_boxes[label - 1] for label in hits]
    box = tuple(slice(min(b[axis].start for b in boxes), max(b[axis].stop for b in boxes)) for axis in range(3))
    lesion = truth[box] & (grown[box] == index)
    found = np.isin(components[box], hits)
    dice = 2.0 * np.count_nonzero(found & lesion) / (np.count_nonzero(found) + np.count_nonzero(lesion))
    return hits, volume, float(dice), _finite(robust_hausdorff(surface_distances(lesion, found, spacing), 95.0))


def lesion_wise(prediction: np.ndarray, truth: np.ndarray,
                spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, float]:
    """BraTS 2023's lesion-wise scores of one region's (X, Y, Z) bool masks, as its evaluation code computes them.

    1. Truth lesions: the 26-connected components of the truth dilated :data:`LESION_DILATIONS` times
       (18-connected cross); a lesion is the truth voxels inside one of them (lesions that close are one).
    2. Predicted 26-connected components that meet a lesion's dilation are its matches; the lesion's Dice and
       HD95 are taken against their union (no match: Dice 0, HD95 374, a false negative).
    3. Lesions of at most :data:`LESION_MIN_VOLUME_MM3` are left out of the scores and counts; their matches
       are no false positives.
    4. Components that match no lesion are false positives (each Dice 0, HD95 374).

    Returns ``{"lesion_dice", "lesion_hd95", "num_tp", "num_fp", "num_fn"}``: the sums over kept lesions and
    false positives divided by their number (none: Dice 1, HD95 0), and the three counts. Everything runs
    inside the masks' bounding box grown by the dilation, each lesion inside its own box.
    """
    box = bounding_box(truth | prediction, margin=LESION_DILATIONS)
    if box is None:
        return dict(lesion_dice=1.0, lesion_hd95=0.0, num_tp=0, num_fp=0, num_fn=0)
    truth, prediction = truth[box], prediction[box]
    grown, _ = ndimage.label(ndimage.binary_dilation(truth, _DILATION_18, iterations=LESION_DILATIONS),
                             _COMPONENTS_26)
    components, num_components = ndimage.label(prediction, _COMPONENTS_26)
    component_boxes = ndimage.find_objects(components)
    lesions = [_score_lesion(index, region, truth, grown, components, component_boxes, spacing)
               for index, region in enumerate(ndimage.find_objects(grown), start=1)]
    matched = set(label for hits, _, _, _ in lesions for label in hits.tolist())
    kept = [(hits, dice, distance) for hits, volume, dice, distance in lesions if volume > LESION_MIN_VOLUME_MM3]
    false_positives = num_components - len(matched)
    true_positives = sum(1 for hits, _, _ in kept if hits.size)
    count = len(kept) + false_positives
    if count == 0:
        lesion_dice, lesion_hd95 = 1.0, 0.0
    else:
        lesion_dice = sum(dice for _, dice, _ in kept) / count
        lesion_hd95 = (sum(distance for _, _, distance in kept) + false_positives * HD95_MISSED) / count
    return dict(lesion_dice=lesion_dice, lesion_hd95=lesion_hd95, num_tp=true_positives, num_fp=false_positives,
                num_fn=len(kept) - true_positives)


def region_scores(prediction: np.ndarray, truth: np.ndarray,
                  spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, float]:

    """Every :data:`COLUMNS` entry of one region's (X, Y, Z) bool masks, as ``{name: value}``."""
    sensitivity, specificity = sensitivity_specificity(prediction, truth)
    total = int(np.count_nonzero(prediction)) + int(np.count_nonzero(truth))
    scores = dict(dice=2.0 * int(np.count_nonzero(prediction & truth)) / total if total else 1.0,
                  hd95=hd95(prediction, truth, spacing), sensitivity=sensitivity, specificity=specificity,
                  gt_volume=_voxel_volume(int(np.count_nonzero(truth)), spacing))
    scores.update(lesion_wise(prediction, truth, spacing))
    return scores
