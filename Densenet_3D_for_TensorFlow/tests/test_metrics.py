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
"""Dice, sensitivity, specificity and HD95 of the 2017 table on masks with known answers, the 2023 columns
through case_metrics, the printed table and metrics.csv, and the summary rows over cases."""

import csv
import math

import numpy as np
import pytest

from runtime import metrics


def _mask(shape, *boxes):
    mask = np.zeros(shape, bool)
    for box in boxes:
        mask[box] = True
    return mask


def test_dice_known_and_both_empty():
    truth = _mask((10, 10, 10), np.s_[0:4, 0:5, 0:5])  # 100 voxels
    prediction = _mask((10, 10, 10), np.s_[2:6, 0:5, 0:5])  # 100 voxels, 50 shared
    assert metrics.dice(prediction, truth) == 0.5
    assert metrics.dice(truth, truth) == 1.0
    empty = np.zeros((10, 10, 10), bool)
    assert metrics.dice(empty, empty) == 1.0
    assert metrics.dice(prediction, empty) == 0.0


def test_sensitivity_and_specificity_known():
    truth = _mask((10, 10, 10), np.s_[0:4, 0:5, 0:5])  # 100 positives, 900 negatives
    prediction = _mask((10, 10, 10), np.s_[2:6, 0:5, 0:5])  # 50 TP, 50 FP
    assert metrics.sensitivity(prediction, truth) == 0.5
    assert metrics.specificity(prediction, truth) == 850 / 900
    empty = np.zeros_like(truth)
    assert metrics.sensitivity(empty, empty) == 1.0
    # Over the brain only (x < 8): 700 negatives, of which the 50 FP are wrong.
    brain = _mask((10, 10, 10), np.s_[0:8, :, :])
    assert metrics.specificity(prediction, truth, brain) == 650 / 700


def test_hd95_in_millimetres():
    a = _mask((20, 20, 20), np.s_[5, 5, 5])
    b = _mask((20, 20, 20), np.s_[5, 5, 9])
    assert metrics.hd95(a, b) == 4.0
    assert metrics.hd95(a, b, spacing=(1.0, 1.0, 2.5)) == 10.0
    cube = _mask((20, 20, 20), np.s_[4:12, 4:12, 4:12])
    assert metrics.hd95(cube, cube, spacing=(0.5, 2.0, 3.0)) == 0.0
    # A cube against the same cube moved 3 voxels along x (2 mm voxels): every
    # distance is 0 (shared side faces) up to 3 voxels; the top 5% is 6 mm.
    moved = np.roll(cube, 3, axis=0)
    assert math.isclose(metrics.hd95(cube, moved, spacing=(2.0, 1.0, 1.0)), 6.0)
    empty = np.zeros_like(cube)
    assert metrics.hd95(empty, empty) == 0.0
    # BraTS: a region in exactly one of the masks scores the volume's diagonal, 373.13 mm.
    assert metrics.hd95(cube, empty) == metrics.hd95(empty, cube) == 373.13


def test_hd95_follows_medpy_on_anisotropic_voxels_worked_by_hand():
    # Two voxels 2 apart along z (2.5 mm voxels) against the first: the pooled
    # surface distances are [0, 5] one way and [0] the other; NumPy's linear
    # 95th percentile of [0, 0, 5] is at index 1.9: 0 + 0.9 * 5 = 4.5 mm.
    pair = _mask((12, 12, 12), np.s_[5, 5, 5], np.s_[5, 5, 7])
    single = _mask((12, 12, 12), np.s_[5, 5, 5])
    assert math.isclose(metrics.hd95(pair, single, spacing=(1.0, 1.0, 2.5)), 4.5)
    # A 7-voxel 3-D plus around (5, 5, 5) against one voxel at (5, 5, 8), voxels
    # 1 x 1 x 2 mm. The plus's surface is its 6 arms (its centre has all 6 face
    # neighbours, so the 6-connected erosion of medpy removes it; a 26-connected
    # one would keep it and give 7.3290). Arm distances to the voxel: 4 x
    # sqrt(1 + 6^2), 4 (arm z+1), 8 (arm z-1); back from the voxel: 4. Sorted
    # [4, 4, s, s, s, s, 8] with s = sqrt(37): index 5.7 -> s + 0.7 (8 - s).
    plus = _mask((12, 12, 12), np.s_[4:7, 5, 5], np.s_[5, 4:7, 5], np.s_[5, 5, 4:7])
    far = _mask((12, 12, 12), np.s_[5, 5, 8])
    expected = math.sqrt(37) + 0.7 * (8 - math.sqrt(37))
    assert math.isclose(metrics.hd95(plus, far, spacing=(1.0, 1.0, 2.0)), expected)
    assert math.isclose(metrics.hd95(far, plus, spacing=(1.0, 1.0, 2.0)), expected)


def test_case_metrics_regions_and_csv(tmp_path):
    truth = np.zeros((12, 12, 12), np.uint8)
    truth[2:10, 2:10, 2:10] = 2
    truth[4:8, 4:8, 4:8] = 1
    truth[5:7, 5:7, 5:7] = 4
    prediction = truth.copy()
    prediction[prediction == 4] = 1  # ET missed entirely, WT and TC still exact
    row = metrics.case_metrics(prediction, truth)
    assert row["wt_dice"] == 1.0 and row["tc_dice"] == 1.0 and row["et_dice"] == 0.0
    assert row["et_hd95"] == 373.13 and row["et_sensitivity"] == 0.0 and row["et_one_empty"] == 1
    assert row["wt_one_empty"] == row["tc_one_empty"] == 0
    rows = [dict(row, case="a"), dict(metrics.case_metrics(truth, truth), case="b")]
    means = metrics.mean_metrics(rows)
    # The missed ET counts as 373.13 mm: it can only make the mean worse (it was left out as NaN).
    assert means["et_dice"] == 0.5 and means["et_hd95"] == 373.13 / 2 and means["et_one_empty"] == 1
    path = tmp_path / "metrics.csv"
    metrics.write_csv(str(path), rows)
    written = list(csv.DictReader(path.open()))
    assert [r["case"] for r in written] == ["a", "b", "mean", "std", "median", "25quantile", "75quantile"]
    assert float(written[2]["et_dice"]) == 0.5 and float(written[4]["et_hd95"]) == 373.13 / 2
    assert [r["et_one_empty"] for r in written] == ["1", "0", "1", "", "", "", ""]
    assert written[2]["wt_one_empty"] == "0"
    table = metrics.format_table(rows).splitlines()
    assert table[1].split()[1:5] == ["wt_dice", "wt_hd95", "wt_sens", "wt_spec"]
    assert [line.split()[0] for line in table[-6:-1]] == ["mean", "std", "median", "25quantile", "75quantile"]
    assert table[-1] == "cases with exactly one empty mask (HD95 373.13 mm): WT 0, TC 0, ET 1 of 2"


def test_summary_rows_over_cases_by_hand_with_the_373_rule():
    rows = [dict(dict.fromkeys(metrics.metric_columns() + metrics.count_columns(), 0), case=str(i))
            for i in range(4)]
    for row, dice, hd in zip(rows, (0.5, 0.7, 0.9, 1.0), (0.0, 2.0, 4.0, metrics.HD95_ONE_EMPTY)):
        row.update(wt_dice=dice, et_hd95=hd)
    summary = {row["case"]: row for row in metrics.summary_rows(rows)}
    # wt_dice: mean 3.1 / 4; deviations -0.275, -0.075, 0.125, 0.225, squares summing to 0.1475 over n - 1 = 3;
    # percentiles at positions 3 x 0.25 = 0.75 and 3 x 0.75 = 2.25 between the sorted values.
    expected_dice = {"mean": 0.775, "std": (0.1475 / 3) ** 0.5, "median": 0.8, "25quantile": 0.5 + 0.75 * 0.2,
                     "75quantile": 0.9 + 0.25 * 0.1}
    # et_hd95: the missed region's 373.13 mm counts like any case's value.
    expected_hd95 = {"mean": 379.13 / 4, "median": 3.0, "25quantile": 1.5, "75quantile": 4.0 + 0.25 * 369.13}
    for name, value in expected_dice.items():
        assert summary[name]["wt_dice"] == pytest.approx(value, abs=1e-12), name
    for name, value in expected_hd95.items():
        assert summary[name]["et_hd95"] == pytest.approx(value, abs=1e-9), name
    assert np.isnan(metrics.summary_rows(rows[:1])[1]["wt_dice"])  # std of one case


def test_case_metrics_in_the_2023_conventions_table_and_csv(tmp_path):
    truth = np.zeros((16, 16, 16), np.uint8)
    truth[2:8, 2:8, 2:8] = 2
    truth[3:7, 3:7, 3:7] = 4
    prediction = truth.copy()
    prediction[12, 12, 12] = 2  # a false-positive WT voxel
    brain = np.zeros(truth.shape, bool)
    brain[:14] = True
    row = metrics.case_metrics(prediction, truth, brain=brain, scores="brats2023")
    assert row["wt_lesion_dice"] == 0.5 and row["wt_lesion_hd95"] == 187.0
    assert (row["wt_num_tp"], row["wt_num_fp"], row["wt_num_fn"]) == (1, 1, 0) and row["wt_gt_volume"] == 216.0
    assert row["et_lesion_dice"] == 1.0 and row["et_lesion_hd95"] == 0.0
    # The code's specificity counts the whole volume (the brain mask is the 2017 table's).
    assert row["wt_specificity"] == 1 - 1 / (16 ** 3 - 216)
    assert metrics.case_metrics(prediction, truth, brain=brain)["wt_specificity"] == 1 - 1 / (14 * 16 * 16 - 216)
    # A region absent from the truth and predicted: sensitivity 0 here, 1 in the 2017 table; HD95 374 vs 373.13.
    missed = np.where(truth == 4, 1, truth).astype(np.uint8)
    row_2023 = metrics.case_metrics(truth, missed, scores="brats2023")
    row_2017 = metrics.case_metrics(truth, missed)
    assert (row_2023["et_sensitivity"], row_2023["et_hd95"]) == (0.0, 374.0)
    assert (row_2017["et_sensitivity"], row_2017["et_hd95"]) == (1.0, 373.13)
    rows = [dict(row, case="a")]
    assert "et_num_fn" in metrics.metric_columns(rows) and "et_num_fn" not in metrics.metric_columns()
    metrics.write_csv(str(tmp_path / "metrics.csv"), rows)
    written = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert float(written[1]["wt_lesion_hd95"]) == 187.0  # the mean row
    table = metrics.format_table(rows).splitlines()
    assert table[0].startswith("scores in the BraTS 2023 evaluation code's conventions")
    assert table[1].split()[1:7] == ["wt_dice", "wt_hd95", "wt_sens", "wt_spec", "wt_les_dice", "wt_les_hd95"]
    assert table[-1].startswith("cases with exactly one empty mask (HD95 374 mm)")
    assert metrics.format_table([dict(row_2017, case="b")]).splitlines()[0].startswith(
        "scores in the BraTS 2017 conventions")
