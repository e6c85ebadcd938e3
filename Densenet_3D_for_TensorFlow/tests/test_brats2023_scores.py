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
"""BraTS 2023's evaluation code's columns (runtime/scoring): DeepMind's surface distances and HD95, the
legacy and lesion-wise scores and counts, sensitivity and specificity in its conventions, on masks whose
answers are worked out by hand from the published definitions (no TensorFlow needed)."""

import math

import numpy as np
import pytest

from runtime.scoring import brats2023, surfaces

ROOT3 = math.sqrt(3.0)
# Surfel areas at 1 mm: a corner cut off (one voxel of 8 inside) sqrt(3)/8; two voxels along an edge, a
# rectangle 1 x sqrt(1/2); four voxels on a face, a unit square.
CORNER, EDGE, FACE = ROOT3 / 8, math.sqrt(0.5), 1.0
# A 4^3 cube's 98 surface points by corner-grid layer across one axis: a face layer (9 face, 12 edge, 4
# corner points) and a middle layer (12 face, 4 edge points).
FACE_LAYER, MIDDLE_LAYER = 9 * FACE + 12 * EDGE + 4 * CORNER, 12 * FACE + 4 * EDGE


def _mask(shape, *boxes):
    mask = np.zeros(shape, bool)
    for box in boxes:
        mask[box] = True
    return mask


def test_surfel_areas_of_codes_by_hand():
    areas = surfaces.surfel_areas((1.0, 1.0, 1.0))
    assert areas[0] == areas[255] == 0.0
    assert areas[1] == pytest.approx(CORNER) and areas[254] == pytest.approx(CORNER)
    assert areas[3] == pytest.approx(EDGE) and areas[15] == pytest.approx(FACE)
    # Three voxels of one face (bits 0, 1, 2): a pentagon split into the triangle of the three midpoints on
    # that face's parallel plane (area 1/2) and a planar quad across the cube (3 sqrt(3) / 8).
    assert areas[7] == pytest.approx(0.5 + 3 * ROOT3 / 8)
    # Bits 0-3 are the four voxels at the high end of the first axis: a square of 3 x 5 mm at (2, 3, 5) mm.
    assert surfaces.surfel_areas((2.0, 3.0, 5.0))[15] == pytest.approx(15.0)


def test_hd95_of_a_thin_structure_isotropic_and_anisotropic():
    # Truth: a 1-voxel line of 10 voxels along z; prediction: the same line and one voxel 5 beyond its end.
    # Truth -> prediction: every point 0. Prediction -> truth: the line's 44 points at 0 (36 edge points,
    # 8 end corners), the lone voxel's 4 near corners at 5 voxels and 4 far ones at 6. Area-weighted, the
    # zeros hold 94.0 % of the area (a count of points would give 84.6 % and 6), so the 95 % distance is 5.
    shape = (12, 12, 24)
    line = _mask(shape, np.s_[5, 5, 5:15])
    spur = _mask(shape, np.s_[5, 5, 5:15], np.s_[5, 5, 20])
    line_area, voxel_area = 36 * EDGE + 8 * CORNER, 8 * CORNER
    assert line_area / (line_area + voxel_area) < 0.95 < (line_area + voxel_area / 2) / (line_area + voxel_area)
    assert brats2023.hd95(spur, line) == 5.0
    # 2.5 mm along z: every area is rescaled (edge triangles (1/4, 1/4, 0) -> (5/8, 5/8, 0), corners
    # (1/8, 1/8, 1/8) -> (5/16, 5/16, 1/8)), the zeros now 94.8 %, and 5 voxels are 12.5 mm.
    edge, corner = 2 * math.hypot(0.625, 0.625), math.sqrt(2 * 0.3125 ** 2 + 0.125 ** 2)
    line_area, voxel_area = 36 * edge + 8 * corner, 8 * corner
    assert line_area / (line_area + voxel_area) < 0.95 < (line_area + voxel_area / 2) / (line_area + voxel_area)
    assert brats2023.hd95(spur, line, spacing=(1.0, 1.0, 2.5)) == pytest.approx(12.5, abs=0.01)
    # Surfaces lie on the corner grid: of two single voxels 4 apart along z, half of each one's corners are
    # 3 corners from the other's nearest and half 4; the 95 % distance is 4 voxels, 10 mm.
    a, b = _mask((20, 20, 20), np.s_[5, 5, 5]), _mask((20, 20, 20), np.s_[5, 5, 9])
    assert brats2023.hd95(a, b, spacing=(1.0, 1.0, 2.5)) == pytest.approx(10.0, abs=0.01)


def test_hd95_is_the_larger_direction_and_empty_masks_follow_the_code():
    # Two 4^3 cubes 2 apart along x against the first alone: prediction -> truth all 0; truth -> prediction
    # the near cube 0 and the far cube's layers 2, 3, 4, 5, 6 voxels from the near face. The cumulative area
    # reaches 95 % only in the last (face) layer: 6 mm.
    shape = (30, 30, 30)
    pair = _mask(shape, np.s_[2:6, 2:6, 2:6], np.s_[8:12, 2:6, 2:6])
    near = _mask(shape, np.s_[2:6, 2:6, 2:6])
    cube = 2 * FACE_LAYER + 3 * MIDDLE_LAYER
    assert (cube + FACE_LAYER + 3 * MIDDLE_LAYER) / (2 * cube) < 0.95
    assert brats2023.hd95(near, pair) == 6.0 and brats2023.hd95(pair, near) == 6.0
    empty = np.zeros(shape, bool)
    assert brats2023.hd95(empty, empty) == 0.0
    assert brats2023.hd95(near, empty) == brats2023.hd95(empty, near) == 374.0
    distances = surfaces.surface_distances(near, empty)
    assert distances.prediction_to_truth.size == 0 and np.isinf(distances.truth_to_prediction).all()


def test_sensitivity_and_specificity_in_the_code_conventions():
    truth = _mask((10, 10, 10), np.s_[0:4, 0:5, 0:5])  # 100 positives, 900 negatives over the whole volume
    prediction = _mask((10, 10, 10), np.s_[2:6, 0:5, 0:5])  # 50 TP, 50 FP
    assert brats2023.sensitivity_specificity(prediction, truth) == (0.5, 850 / 900)
    empty = np.zeros_like(truth)
    assert brats2023.sensitivity_specificity(empty, empty) == (1.0, 1.0)
    # An empty truth and a false prediction: sensitivity 0 (the 2017 table says 1).
    assert brats2023.sensitivity_specificity(prediction, empty) == (0.0, 900 / 1000)
    assert brats2023.sensitivity_specificity(np.ones_like(truth), np.ones_like(truth)) == (1.0, 0.0)


def test_region_scores_lesion_wise_worked_by_hand():
    shape = (30, 30, 30)
    lesion_a = np.s_[2:6, 2:6, 2:6]  # 64 voxels
    lesion_b = np.s_[2:6, 2:6, 20:24]  # 64 voxels, never predicted: a false negative
    lesion_c = np.s_[20:23, 20:23, 2:5]  # 27 voxels: at most 50 mm^3 at 1 mm, left out
    truth = _mask(shape, lesion_a, lesion_b, lesion_c)
    # A exactly, plus one voxel 2 beyond A's face: a separate component inside A's 3-voxel dilation, so it
    # joins A's match (Dice 2 x 64 / (65 + 64); the voxel's 1.7 of 82.9 mm^2 of surface, under 5 %, so
    # HD95 0). C exactly (a match of a left-out lesion is no false positive); one far voxel: a false positive.
    prediction = _mask(shape, lesion_a, np.s_[7, 3, 3], lesion_c, np.s_[25, 25, 25])
    scores = brats2023.region_scores(prediction, truth)
    # Scored: A, B (0, 374 mm), the false positive (0, 374 mm).
    assert scores["lesion_dice"] == pytest.approx(128 / 129 / 3) and scores["lesion_hd95"] == pytest.approx(748 / 3)
    assert (scores["num_tp"], scores["num_fp"], scores["num_fn"]) == (1, 1, 1)
    # Legacy: Dice 2 x 91 / (155 + 93); truth -> prediction: A and C at 0 (81.2 + 42.7 mm^2), B's
    # layers 14..18 voxels from A's face (z = 6): the 95 % of 205.1 mm^2 is reached in the last, 18 mm.
    assert scores["dice"] == pytest.approx(2 * 91 / (155 + 93)) and scores["hd95"] == pytest.approx(18.0)
    assert scores["sensitivity"] == pytest.approx(91 / 155) and scores["gt_volume"] == 155.0
    assert scores["specificity"] == pytest.approx(1 - 2 / (30 ** 3 - 155))
    # 2 mm voxels along x: C is 54 mm^3 and counts (Dice 1, HD95 0); dilation counts voxels, not mm.
    scores = brats2023.region_scores(prediction, truth, spacing=(2.0, 1.0, 1.0))
    assert scores["lesion_dice"] == pytest.approx((128 / 129 + 1) / 4) and scores["lesion_hd95"] == pytest.approx(187.0)
    assert (scores["num_tp"], scores["num_fp"], scores["num_fn"]) == (2, 1, 1) and scores["gt_volume"] == 310.0
    empty = np.zeros(shape, bool)
    assert brats2023.lesion_wise(empty, empty) == dict(lesion_dice=1.0, lesion_hd95=0.0, num_tp=0, num_fp=0,
                                                       num_fn=0)
    only_small = brats2023.lesion_wise(empty, _mask(shape, lesion_c))  # only a left-out lesion, missed
    assert (only_small["lesion_dice"], only_small["lesion_hd95"], only_small["num_fn"]) == (1.0, 0.0, 0)
    fp_only = brats2023.lesion_wise(_mask(shape, lesion_a), empty)
    assert (fp_only["lesion_dice"], fp_only["lesion_hd95"], fp_only["num_fp"]) == (0.0, 374.0, 1)


def test_lesions_closer_than_the_dilation_are_one():
    # Two cubes 2 voxels apart are one lesion (their dilations meet): finding one gives Dice 2 x 64 / 192,
    # not (1 + 0) / 2, and the HD95 of the two-cube test above.
    shape = (30, 30, 30)
    pair = _mask(shape, np.s_[2:6, 2:6, 2:6], np.s_[8:12, 2:6, 2:6])
    found = _mask(shape, np.s_[2:6, 2:6, 2:6])
    scores = brats2023.lesion_wise(found, pair)
    assert scores["lesion_dice"] == pytest.approx(2 / 3) and scores["lesion_hd95"] == pytest.approx(6.0)
    assert (scores["num_tp"], scores["num_fp"], scores["num_fn"]) == (1, 0, 0)


def test_a_matching_component_reaching_beyond_the_lesion_box_is_scored_whole():
    # The prediction is the lesion extended by 20 voxels along z: one component, matched; its Dice and HD95
    # count all of it (Dice 2 x 64 / (64 + 384)), not the part inside the lesion's box.
    shape = (40, 40, 40)
    truth = _mask(shape, np.s_[2:6, 2:6, 2:6])
    prediction = _mask(shape, np.s_[2:6, 2:6, 2:26])
    scores = brats2023.lesion_wise(prediction, truth)
    assert scores["lesion_dice"] == pytest.approx(128 / 448)
    assert scores["lesion_hd95"] == brats2023.hd95(prediction, truth) > 10
