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
"""Block inference equals the reference window inference; NIfTI output and PNG."""

import argparse
import os
import types

import nibabel as nib
import numpy as np
import pytest

from common import npu_utils, stack
from conftest import write_reoriented_case
from data_loading import cases, synthetic
from data_loading.nifti import load_case
from data_loading.preprocessing import head_mask
from model import tf_models
from runtime import flags, inference


@pytest.fixture(scope="module")
def model():
    stack.set_random_seed(3)
    return tf_models.build_model("dense24", width_multiplier=0.15)


@pytest.fixture(scope="module")
def predict_fn(model):
    return inference.make_predict_fn(model)


@pytest.fixture(scope="module")
def twin_fn(model):
    """The 'valid'-padding twin the block method runs."""
    return inference.make_predict_fn(tf_models.inference_twin(model, "dense24", 0.15))


@pytest.fixture(scope="module")
def volume():
    return np.random.default_rng(0).normal(size=(52, 46, 40, 4)).astype(np.float32)


@pytest.mark.slow
def test_block_inference_equals_window_inference_where_windows_reach(predict_fn, twin_fn, volume):
    block_logits = inference.predict_blocks(twin_fn, volume, block=20)
    window_logits, counts = inference.predict_windows(predict_fn, volume, batch_size=4)
    # The reference grid's clamped last windows (x 0, 12, 14; y 0, 8; z 0, 2) cover
    # every voxel at least 13 from the border; where two overlap, their logits add.
    covered = counts > 0
    assert covered.sum() == 26 * 20 * 14 and covered[13:39, 13:33, 13:27].all()
    assert counts.max() == 8 and counts[30, 22, 16] == 8 and counts[13, 13, 13] == 1
    np.testing.assert_allclose(block_logits[covered] * counts[covered][:, None], window_logits[covered], atol=4e-4)
    np.testing.assert_array_equal(inference.logits_to_labels(block_logits[covered]),
                                  inference.logits_to_labels(window_logits[covered]))


@pytest.mark.slow
def test_block_shape_does_not_change_the_result_and_every_voxel_is_predicted(predict_fn, volume):
    small = inference.predict_blocks(predict_fn, volume, block=20)
    assert small.shape == volume.shape[:3] + (5,)
    for block in (52, (30, 12, 40)):  # one block; then 2 x 4 x 1 blocks, not cubes
        np.testing.assert_allclose(inference.predict_blocks(predict_fn, volume, block=block), small, atol=2e-4)
    assert (np.abs(small).sum(axis=-1) > 0).all()  # the border has logits too


# Each channel's value outside the head: 0 (--normalisation=zero_background) or, as the reference normalises,
# -mean/std of the modality's non-zero voxels.
BACKGROUNDS = {"zero": np.zeros(4, np.float32), "reference": np.array([-0.7, -1.3, -0.4, -2.1], np.float32)}


@pytest.mark.parametrize("background", list(BACKGROUNDS))
@pytest.mark.slow
def test_whole_case_labels_agree_and_are_background_outside_the_head(predict_fn, twin_fn, volume, background):
    background = BACKGROUNDS[background]
    image = volume.copy()
    image[:, :, 26:] = background  # the head ends at z = 26
    image[:6] = background
    block = inference.predict_labels(twin_fn, image, "block", block=20, background=background)
    window = inference.predict_labels(predict_fn, image, "window", window_batch=4, background=background)
    _, counts = inference.predict_windows(predict_fn, image, batch_size=4, background=background)
    covered = counts > 0
    inside = head_mask(image, background)
    assert covered.any() and not inside[:6].any()
    # The block method pads with each channel's background, so a block sees what a window sees.
    np.testing.assert_array_equal(block[covered], window[covered])
    assert not block[~inside].any() and not window[~inside].any()
    assert set(np.unique(block)) <= {0, 1, 2, 4} and block[inside].any()


@pytest.mark.parametrize("background", list(BACKGROUNDS))
def test_window_inference_skips_windows_without_a_head_voxel(predict_fn, volume, background):
    background = BACKGROUNDS[background]
    image = volume.copy()
    image[12:] = background  # of the windows at x = 0, 12 and 14, the last two see no head voxel
    corners = inference.window_corners(image.shape[:3])
    kept = inference.nonzero_window_corners(image, background=background)
    assert len(corners) == 3 * 2 * 2 and kept.tolist() == [[0, 0, 0], [0, 0, 2], [0, 8, 0], [0, 8, 2]]
    _, counts = inference.predict_windows(predict_fn, image, batch_size=4, background=background)
    assert (counts > 0).sum() == 12 * 20 * 14


def test_window_logits_equal_a_run_on_the_references_inputs(predict_fn, tmp_path):
    """A case as load_case reads it (--normalisation=reference) gives the window logits of inputs made by the
    reference's formula from the files: per modality (x - mean) / std of its non-zero voxels, whole volume."""
    synthetic.write_dataset(str(tmp_path), 1, (48, 48, 40), seed=3)
    case = cases.discover_cases(str(tmp_path))[0][0]
    loaded = load_case(case)
    channels = []
    for kind in ("flair", "t2", "t1", "t1ce"):
        raw = np.asanyarray(nib.load(case.path(kind)).dataobj).astype(np.float64)
        values = raw[raw != 0]
        channels.append(((raw - values.mean()) / values.std()).astype(np.float32))
    image = np.stack(channels, axis=-1)
    corners = inference.window_corners(image.shape[:3])
    ours, _ = inference.predict_windows(predict_fn, loaded.image, batch_size=4, corners=corners)
    reference, _ = inference.predict_windows(predict_fn, image, batch_size=4, corners=corners)
    np.testing.assert_array_equal(ours, reference)
    assert loaded.background.tolist() == image[0, 0, 0].tolist()


def test_window_grid_is_the_references():
    assert inference.axis_corners(240) == list(range(0, 193, 12)) + [202]
    assert inference.axis_corners(155) == list(range(0, 109, 12)) + [117]
    assert inference.axis_corners(50) == [0, 12] and inference.axis_corners(37) == []
    assert len(inference.window_corners((240, 240, 155))) == 3564


@pytest.mark.slow
def test_one_trace_serves_every_block_of_every_volume_and_every_window_batch(model, volume):
    # An NPU compiles each input shape: edge blocks and the last window batch are padded to the one shape.
    block_fn = inference.make_predict_fn(tf_models.inference_twin(model, "dense24", 0.15), "test_block")
    window_fn = inference.make_predict_fn(model, "test_window")
    for x, y, z in ((52, 46, 40), (25, 33, 18)):  # 3 x 3 x 2 blocks of 20^3, then 2 x 2 x 1 (edges padded)
        assert inference.predict_blocks(block_fn, volume[:x, :y, :z], block=20).shape == (x, y, z, 5)
    for x, y, z in ((52, 46, 40), (40, 41, 38)):  # 12 windows, then 4: last batches of 2 and 4 filled up to 5
        _, counts = inference.predict_windows(window_fn, volume[:x, :y, :z], batch_size=5)
        assert counts.any()
    assert npu_utils.TRACES["test_block"] == 1 and npu_utils.TRACES["test_window"] == 1


def test_one_trace_serves_whole_cases_of_two_sizes(model, volume):
    """Two cases of different sizes and head boxes, labelled by the block method with a non-cubic block: the
    network is traced once for both (on an NPU, compiled once per run)."""
    block_fn = inference.make_predict_fn(tf_models.inference_twin(model, "dense24", 0.15), "test_cases")
    background = BACKGROUNDS["reference"]
    for x, y, z, head_ends in ((52, 46, 40, 30), (33, 41, 28, 20)):  # head boxes 30x46x40, then 20x41x28
        image = volume[:x, :y, :z].copy()
        image[head_ends:] = background
        labels = inference.predict_labels(block_fn, image, "block", block=(16, 24, 12), background=background)
        assert labels.shape == (x, y, z) and labels[:head_ends].any() and not labels[head_ends:].any()
    assert npu_utils.TRACES["test_cases"] == 1


def test_block_size_is_auto_a_cube_or_three_edges():
    assert flags.block_shape("auto") == "auto" and flags.block_shape("102") == (102, 102, 102)
    assert flags.block_shape("102,102,78") == (102, 102, 78)
    for bad in ("0", "102,78", "a,b,c", "102,0,78"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected auto, N or X,Y,Z"):
            flags.block_shape(bad)


def test_auto_block_is_the_least_work_within_128_cubed_read():
    # The synthetic 240x240x155 case's head box: 2 x 3 x 1 blocks (6 x 114 x 80 x 143 of work against
    # 8 x 114 x 114 x 78 for its halves); one block of it would read 227 x 227 x 156 voxels, over 128^3.
    assert inference.fit_block([(201, 201, 130)]) == (101, 67, 130)
    assert inference.fit_block([(138, 169, 138)]) == (138, 85, 69)  # 1 x 2 x 2 blocks
    # One shape for a run of both: the larger box takes 4 x 2 x 1 blocks, the smaller 3 x 2 x 1.
    assert inference.fit_block([(138, 169, 138), None, (201, 201, 130)]) == (51, 101, 138)
    assert inference.fit_block([(40, 40, 34)]) == (40, 40, 34)  # a small head: one block
    assert inference.fit_block([None]) == (1, 1, 1)  # no head voxel in any case: no block runs
    with pytest.raises(ValueError, match="give --block_size"):
        inference.fit_block([(400, 40, 40)], max_voxels=30 ** 3)  # 16 blocks of 25 + 26 along X


def test_labels_are_brats_values_never_3():
    logits = np.zeros((4, 5), np.float32)
    logits[np.arange(4), [0, 2, 3, 4]] = 1.0
    logits[2, 1] = 0.5  # class 3 wins the raw argmax; the best real class is 1
    np.testing.assert_array_equal(inference.logits_to_labels(logits), [0, 2, 1, 4])


def test_nifti_output_keeps_affine_header_and_values(tmp_path):
    affine = np.array([[-1.2, 0, 0, 10], [0, -1.0, 0, 200], [0, 0, 2.5, -30], [0, 0, 0, 1]])
    source = nib.Nifti1Image(np.zeros((8, 9, 10), np.float32), affine)
    source.header.set_slope_inter(2.0, 1.0)
    labels = np.random.default_rng(1).choice([0, 1, 2, 4], size=(8, 9, 10)).astype(np.uint8)
    path = str(tmp_path / "case.nii.gz")
    inference.save_prediction(path, labels, affine, source.header)
    written = nib.load(path)
    np.testing.assert_allclose(written.affine, affine)
    assert written.header.get_zooms() == pytest.approx((1.2, 1.0, 2.5))
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), labels)
    assert written.get_data_dtype() == np.uint8


def test_a_case_flipped_and_permuted_on_disk_gets_the_same_labels(model, synthetic_root, tmp_path):
    """Predicted on a copy stored in another voxel order, the written labels are the original's voxel for
    voxel once brought to the copy's order, with the copy's own affine."""
    orientation = np.array([[1, -1], [0, 1], [2, -1]])  # axes (y, x, z), the new second and third flipped
    source = os.path.join(synthetic_root, "Synth_002")
    moved = write_reoriented_case(source, str(tmp_path / "moved" / "Synth_002"), orientation)
    args = types.SimpleNamespace(save_path=str(tmp_path / "predictions"), inference="block", model_name="dense24",
                                 width_multiplier=0.15, block_size="auto", window_batch=4, save_png=False,
                                 mode="predict", metrics="brats", normalisation="reference")
    lines = []
    written = {}
    for name, folder in (("original", source), ("moved", moved)):
        case = cases.scan_case(folder)
        args.save_path = str(tmp_path / name)
        inference.run_inference(args, model, [case], types.SimpleNamespace(image_paths={case.case_id: None}),
                                with_truth=False, log=lines.append)
        written[name] = nib.load(os.path.join(args.save_path, "Synth_002.nii.gz"))
    np.testing.assert_allclose(written["moved"].affine, nib.load(os.path.join(moved, "Synth_002_flair.nii.gz")).affine)
    original = np.asanyarray(written["original"].dataobj)
    assert len(np.unique(original)) > 1  # the untrained network predicts more than one class here
    np.testing.assert_array_equal(np.asanyarray(written["moved"].dataobj),
                                  nib.orientations.apply_orientation(original, orientation))
    # Each run first fits its block to its case's head box: the same box in the network's voxel order.
    assert lines[0] == lines[2] and lines[0].startswith("[predict] block inference: blocks of ")
    assert ", stored as" not in lines[1] and lines[3].endswith(", stored as PRI, read as LPS")


def test_png_written(tmp_path):
    flair = np.random.default_rng(2).normal(size=(30, 32, 20)).astype(np.float32)
    label = np.zeros((30, 32, 20), np.uint8)
    label[10:15, 10:15, 8:12] = 4
    path = str(tmp_path / "case.png")
    inference.save_png(path, flair, label, label)
    from PIL import Image
    image = Image.open(path)
    assert image.size == (3 * 32, 3 * 32) and os.path.getsize(path) > 1000


def test_predict_labels_needs_the_size_of_its_method():
    image = np.ones((30, 30, 30, 4), np.float32)
    with pytest.raises(ValueError, match="'block' needs block"):
        inference.predict_labels(None, image, "block", window_batch=8)
    with pytest.raises(ValueError, match="'window' needs window_batch"):
        inference.predict_labels(None, image, "window", block=20)
