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
"""Block tables, parameter counts, LR-ASPP shapes and the save/load round trip."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from common import stack
from common.stack import keras
from common.tests import processes
from model.lraspp import build_lraspp
from model.mobilenet_v3 import build_backbone, build_classifier, make_divisible
from model.specs import LARGE_BLOCKS, NETWORKS, SMALL_BLOCKS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_block_tables_match_the_paper():
    # Spot rows of Tables 1 and 2 and the totals the tables imply.
    assert len(LARGE_BLOCKS) == 15 and len(SMALL_BLOCKS) == 11
    assert LARGE_BLOCKS[3] == (5, 72, 40, True, "RE", 2)
    assert LARGE_BLOCKS[-1] == (5, 960, 160, True, "HS", 1)
    assert SMALL_BLOCKS[0] == (3, 16, 16, True, "RE", 2)
    assert SMALL_BLOCKS[6] == (5, 120, 48, True, "HS", 1)
    assert [b.stride for b in SMALL_BLOCKS].count(2) == 4
    assert [b.stride for b in LARGE_BLOCKS].count(2) == 4
    assert sum(b.se for b in LARGE_BLOCKS) == 8 and sum(b.se for b in SMALL_BLOCKS) == 9
    assert [b.activation for b in LARGE_BLOCKS].count("RE") == 6
    assert [b.activation for b in SMALL_BLOCKS].count("RE") == 3
    assert (NETWORKS["small"].head, NETWORKS["large"].head) == (1024, 1280)
    assert (NETWORKS["small"].last_conv, NETWORKS["large"].last_conv) == (576, 960)


def test_make_divisible():
    assert [make_divisible(v) for v in (16, 12, 72 * 0.75, 4, 100)] == [16, 16, 56, 8, 104]


@pytest.mark.parametrize("network,alpha", [("small", 1.0), ("large", 1.0), ("small", 0.75), ("large", 0.75)])
def test_parameter_count_equals_keras_applications(network, alpha):
    reference = {"small": keras.applications.MobileNetV3Small,
                 "large": keras.applications.MobileNetV3Large}[network]
    # weights=None and include_preprocessing=False: the same network without
    # downloads; preprocessing has no parameters either way.
    expected = reference(alpha=alpha, weights=None, include_preprocessing=False,
                         input_shape=(224, 224, 3), classes=1000).count_params()
    assert build_classifier(network, alpha, 1000).count_params() == expected


def test_pinned_counts_and_half_width_builds():
    assert build_classifier("small", 1.0, 1000).count_params() == 2_554_968
    assert build_classifier("large", 1.0, 1000).count_params() == 5_507_432
    for network in ("small", "large"):
        model = build_classifier(network, 0.5, 10, input_shape=(64, 64, 3))
        assert model.output_shape == (None, 10)


@pytest.mark.parametrize("network", ["small", "large"])
def test_half_width_trains(network):
    # Two Adam steps on a tiny batch: finite losses and every trainable weight updated.
    stack.set_random_seed(0)
    model = build_classifier(network, 0.5, 3, input_shape=(32, 32, 3))
    images = tf.random.uniform((4, 32, 32, 3), 0, 255, seed=1)
    labels = tf.one_hot([0, 1, 2, 1], 3)
    optimizer = keras.optimizers.Adam(1e-3)
    before = [weight.numpy() for weight in model.trainable_weights]
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.categorical_crossentropy(labels, model(images, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        assert np.isfinite(loss.numpy())
    unchanged = [index for index, (weight, old) in enumerate(zip(model.trainable_weights, before))
                 if np.array_equal(weight.numpy(), old)]
    assert unchanged == []


def test_backbone_endpoints_by_stage():
    inputs = keras.Input((64, 64, 3))
    features, endpoints = build_backbone(inputs, "small", 1.0)
    assert sorted(endpoints) == [2, 4, 8, 16, 32]
    assert endpoints[8].shape[1:] == (8, 8, 24) and features.shape[1:] == (2, 2, 576)
    features, endpoints = build_backbone(keras.Input((64, 64, 3)), "large", 1.0, dilate_last_stage=True)
    assert sorted(endpoints) == [2, 4, 8, 16]
    assert endpoints[8].shape[1:] == (8, 8, 40) and features.shape[1:] == (4, 4, 960)


@pytest.mark.parametrize("network", ["small", "large"])
def test_lraspp_output_at_input_size(network):
    model = build_lraspp(network, 0.5, num_classes=3)
    for height, width in ((32, 32), (64, 96), (160, 128)):
        out = model(np.zeros((1, height, width, 3), "float32"))
        assert out.shape == (1, height, width, 3)
        np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)
    assert build_lraspp(network, 1.0, 5, input_shape=(96, 64, 3)).output_shape == (None, 96, 64, 5)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="network"):
        build_classifier("medium")
    with pytest.raises(ValueError, match="alpha"):
        build_classifier("small", 0.0)
    with pytest.raises(ValueError, match="multiples of 16"):
        build_lraspp("small", input_shape=(100, 96, 3))


@pytest.mark.subprocess
def test_saved_model_loads_without_custom_objects_in_fresh_process(tmp_path, python_env):
    stack.set_random_seed(0)
    model = build_classifier("small", 0.5, 4, input_shape=(64, 64, 3))
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model_file = "model" + stack.MODEL_FILE_SUFFIX
    model.save(tmp_path / model_file)
    np.save(tmp_path / "images.npy", images)
    # The fresh process runs from tmp_path with only the repository root importable (for the stack's
    # keras), so this directory's modules are not.
    code = ("import numpy as np; from common.stack import keras; "
            f"m = keras.models.load_model('{model_file}'); "
            "np.save('out.npy', m.predict(np.load('images.npy'), verbose=0))")
    processes.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(python_env, PYTHONPATH=REPO_ROOT),
                  check=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.subprocess
def test_saved_model_signature_is_images_to_predictions_on_every_stack(tmp_path, python_env):
    """The export's serving signature has one input "images" and one output "predictions" on both stacks
    (left to themselves, Keras 3 names the output output_0 and Keras 2.6 after the last layer), and a
    fresh process that knows nothing of Keras gets the model's outputs from it."""
    stack.set_random_seed(0)
    model = build_classifier("small", 0.5, 4, input_shape=(64, 64, 3))
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    stack.export_saved_model(model, str(tmp_path / "saved_model"))
    np.save(tmp_path / "images.npy", images)
    code = ("import json, numpy as np, tensorflow as tf; "
            "loaded = tf.saved_model.load('saved_model'); serve = loaded.signatures['serving_default']; "
            "_, inputs = serve.structured_input_signature; "
            "print(json.dumps([sorted(inputs), sorted(serve.structured_outputs)])); "
            "np.save('out.npy', serve(images=tf.constant(np.load('images.npy')))['predictions'].numpy())")
    result = processes.run([sys.executable, "-c", code], cwd=tmp_path, env=python_env, capture_output=True,
                           text=True, timeout=300, check=True)
    assert result.stdout.strip().splitlines()[-1] == '[["images"], ["predictions"]]'
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-6)
