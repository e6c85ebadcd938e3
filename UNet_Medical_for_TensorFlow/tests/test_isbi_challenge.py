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
"""The ISBI 2012 challenge end to end on a 30-slice synthetic stack in the real format: a stack cut inside its
page directories is one line at train, evaluate and predict; predict's probability stack in the challenge's
submission format; evaluate's V_rand and V_info lines."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image, ImageSequence

from data_loading import synthetic
from runtime import metrics
from test_training import SMALL, metrics_of, run_main

# Every test here runs main.py in a process of its own (test_training.run_main).
pytestmark = pytest.mark.subprocess

SLICES = 30  # as the ISBI stacks
PAGE_PIXELS = 64 * 64  # the synthetic slices' bytes per page


@pytest.fixture(scope="module")
def challenge_run(tmp_path_factory):
    """``(data_dir, model_dir)``: 30 synthetic 64x64 slices per stack and a 4-filter UNet trained 2 steps on fold 0."""
    data_dir = str(tmp_path_factory.mktemp("isbi30"))
    synthetic.write_isbi_stacks(data_dir, slices=SLICES, size=64, seed=0)
    model_dir = str(tmp_path_factory.mktemp("run"))
    trained = run_main("--data_path", data_dir, "--model_dir", model_dir, "--crossvalidation_idx=0",
                       "--max_steps=2", "--log_every=1", *SMALL)
    assert trained.returncode == 0, trained.stderr[-2000:]
    return data_dir, model_dir


def _pages(path):
    with Image.open(path) as image:
        return [(page.mode, np.array(page)) for page in ImageSequence.Iterator(image)]


def test_predict_writes_the_challenges_probability_stack_and_counts_the_slices(challenge_run):
    data_dir, model_dir = challenge_run
    result = run_main("--data_path", data_dir, "--model_dir", model_dir, "--mode=predict", "--save_probabilities")
    assert result.returncode == 0, result.stderr[-2000:]
    folder = os.path.join(model_dir, "predictions")
    assert (f"[predict] read 30 test slices, wrote 30 masks and 30 probability maps: {folder}/test-masks.tif, "
            f"{folder}/test-probabilities.tif, ") in result.stdout
    probabilities = _pages(os.path.join(folder, "test-probabilities.tif"))
    assert len(probabilities) == SLICES and {mode for mode, _ in probabilities} == {"F"}
    stack = np.stack([page for _, page in probabilities])
    assert stack.dtype == np.float32 and stack.shape == (SLICES, 64, 64)
    assert 0.0 <= stack.min() and stack.max() <= 1.0 and stack.std() > 0
    masks = np.stack([page for _, page in _pages(os.path.join(folder, "test-masks.tif"))])
    clear = np.abs(stack - 0.5) > 1e-4  # the masks are the argmax (a float32 softmax need not sum to 1 exactly)
    assert clear.mean() > 0.5 and np.array_equal((masks == 255)[clear], (stack > 0.5)[clear])


def test_evaluate_reports_the_challenge_scores_with_their_thresholds(challenge_run):
    data_dir, model_dir = challenge_run
    result = run_main("--data_path", data_dir, "--model_dir", model_dir, "--mode=evaluate")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = metrics_of(result.stdout)
    assert 0 < figures["v_rand"] <= 1 and 0 <= figures["v_info"] <= 1
    thresholds = [round(threshold, 6) for threshold in metrics.CHALLENGE_THRESHOLDS]
    assert figures["v_rand_threshold"] in thresholds and figures["v_info_threshold"] in thresholds


@pytest.mark.parametrize("mode,name", [("train", "train-volume.tif"), ("evaluate", "train-labels.tif"),
                                       ("predict", "test-volume.tif")])
def test_a_stack_cut_inside_its_page_directories_is_one_line_at_every_mode(challenge_run, tmp_path, mode, name):
    data_dir, model_dir = challenge_run
    copy = str(tmp_path / "data")
    shutil.copytree(data_dir, copy)
    path = os.path.join(copy, name)
    data = open(path, "rb").read()
    # The synthetic writer's (Pillow's) layout: the last page's directory, then its pixels; cut 20 bytes
    # before the pixels, inside that directory.
    with open(path, "wb") as handle:
        handle.write(data[:len(data) - PAGE_PIXELS - 20])
    runs = model_dir if mode != "train" else str(tmp_path / "new_run")
    result = run_main("--data_path", copy, "--model_dir", runs, f"--mode={mode}",
                      *(SMALL + ["--crossvalidation_idx=0"] if mode == "train" else []))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path}: the directory of page 30 (bytes ") and last.endswith(
        "; the file is cut short or damaged (expected every page it promises)")
