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
"""Shapes, pinned parameter counts and the config round trip of the networks."""

import numpy as np
import pytest

from common.stack import keras
from model import specs, tf_models

# The reference page's counts, computed from the layer list with BN moving
# statistics. They match exactly once three details of the reference graph are
# kept: the first 3^3 conv of a dense pathway has a bias, the 1^3 transition
# convs and every 3^3 conv followed by BN have none, and the second dense block
# reads the first block's output (not the 1^3 transition), which is why
# dense48's block 2 has 120 + 6 * 24 = 264 channels.
PAPER_PARAMETER_COUNTS = {"dense24": 793_406, "dense48": 1_957_742, "no-dense": 7_076_366,
                          "dense24_nocorrection": 793_406}


@pytest.mark.parametrize("name,count", sorted(PAPER_PARAMETER_COUNTS.items()))
def test_parameter_counts_match_the_reference_page(name, count):
    assert tf_models.build_model(name).count_params() == count


def test_no_dense_spellings_are_the_same_model():
    assert specs.canonical_model_name("no-dense") == specs.canonical_model_name("no_dense")


def test_unknown_name_and_bad_arguments_raise():
    with pytest.raises(ValueError, match="dense24"):
        tf_models.build_model("dense12")
    with pytest.raises(ValueError, match="width_multiplier"):
        tf_models.build_model("dense24", width_multiplier=0)
    with pytest.raises(ValueError, match="input_size"):
        tf_models.build_model("dense24", input_size=(20, 38, 38))
    with pytest.raises(ValueError, match="padding"):
        tf_models.build_model("dense24", padding="causal")


def test_receptive_fields_and_layer_widths():
    model = tf_models.build_model("dense24")
    assert model.get_layer("a_block1_unit6_concat").output.shape[-1] == 96
    assert model.get_layer("a_block2_unit6_concat").output.shape[-1] == 168
    assert model.get_layer("b_a_15").output.shape[-1] == 192
    assert model.get_layer("b_a_27").output.shape[-1] == 336
    dense48 = tf_models.build_model("dense48")
    assert dense48.get_layer("a_block1_unit6_concat").output.shape[-1] == 120
    assert dense48.get_layer("a_out15_relu").output.shape[-1] == 192
    assert dense48.get_layer("a_block2_unit6_concat").output.shape[-1] == 264
    assert dense48.get_layer("a_out27_relu").output.shape[-1] == 336
    plain = tf_models.build_model("no_dense")
    assert plain.get_layer("a_layer7_relu").output.shape[-1] == 96
    assert plain.get_layer("a_layer13_relu").output.shape[-1] == 168


@pytest.mark.parametrize("name", ["dense24", "no-dense"])
def test_output_shapes_training_patch_and_larger_block(name):
    model = tf_models.build_model(name, width_multiplier=0.1)
    out = model(np.zeros((2, 38, 38, 38, 4), np.float32))
    assert out["wt"].shape == (2, 12, 12, 12, 2)
    assert out["labels"].shape == (2, 12, 12, 12, 5)
    out = model(np.zeros((1, 40, 30, 29, 4), np.float32))
    assert out["labels"].shape == (1, 14, 4, 3, 5)


def test_output_depends_only_on_the_27_voxel_receptive_field():
    """Changing the input 14 voxels from an output voxel leaves it unchanged."""
    model = tf_models.build_model("dense24", width_multiplier=0.1)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 40, 40, 40, 4)).astype(np.float32)
    changed = image.copy()
    changed[0, 0] += 5.0  # input plane 0 is 14 voxels from output index 1 (input voxel 14)
    before = model(image)["labels"].numpy()
    after = model(changed)["labels"].numpy()
    np.testing.assert_allclose(before[0, 1:], after[0, 1:], atol=1e-5)
    nearby = image.copy()
    nearby[0, 8] += 5.0  # 5 voxels from output index 0's input voxel 13
    assert np.abs(model(nearby)["labels"].numpy()[0, 0] - before[0, 0]).max() > 1e-4


def test_config_round_trip():
    model = tf_models.build_model("dense24", width_multiplier=0.1)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(1).normal(size=(1, 38, 38, 38, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x)["labels"], clone(x)["labels"], atol=1e-5)


@pytest.mark.parametrize("name", ["dense24", "no-dense"])
def test_inference_twin_gives_the_same_logits_with_valid_padding(name):
    model = tf_models.build_model(name, width_multiplier=0.1)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # BN statistics away from their identity initial values
        if any(part in weight.name for part in ("moving", "gamma", "beta")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype(np.float32))
    twin = tf_models.inference_twin(model, name, width_multiplier=0.1)
    image = rng.normal(size=(1, 41, 30, 35, 4)).astype(np.float32)
    expected, got = model(image, training=False), twin(image, training=False)
    for key in ("wt", "labels"):
        assert got[key].shape == expected[key].shape == (1, 15, 4, 9, expected[key].shape[-1])
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5)
    assert twin.count_params() == model.count_params()


def test_the_references_initialisers():
    model = tf_models.build_model("dense24", width_multiplier=0.1)
    initializer = lambda name: model.get_layer(name).kernel_initializer.__class__.__name__  # noqa: E731
    assert initializer("a_out15_conv") == initializer("b_out27_conv") == "HeNormal"  # conv + BN + ReLU
    assert initializer("a_block1_unit1_conv") == "GlorotNormal"  # a dense unit's conv
    assert initializer("a_initial_conv") == initializer("labels_logits15") == "GlorotUniform"  # not given: Keras'
    plain = tf_models.build_model("no-dense", width_multiplier=0.1)
    assert plain.get_layer("a_layer1_conv").kernel_initializer.__class__.__name__ == "HeNormal"
