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
"""--weights from keras.applications: files written here with weights=None (no internet), mapped by layer."""

import warnings

import h5py
import numpy as np
import pytest

from common import stack
from common.errors import UserError
from common.stack import keras
from model.lraspp import build_lraspp
from model.mobilenet_v3 import build_classifier
from model import network


def _reference_file(path, include_top=True, legacy=False):
    """A keras.applications MobileNetV3Small (alpha 0.75) with random, distinct weights, saved at ``path``.

    ``legacy``: the Keras 2 HDF5 layout of the ImageNet files keras.applications downloads.
    """
    reference = keras.applications.MobileNetV3Small(input_shape=(224, 224, 3), alpha=0.75, weights=None,
                                                    include_top=include_top)
    rng = np.random.default_rng(0)
    for weight in reference.weights:
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    if legacy:
        _write_keras2_weights_h5(reference, path)
    else:
        reference.save_weights(path)
    return [layer for layer in reference.layers if layer.weights]


def _write_keras2_weights_h5(model, path):
    """``model``'s weights in the Keras 2 HDF5 layout of the ImageNet files, written with h5py alone (the
    same on both stacks): per layer a group whose "weight_names" list its datasets, trainable weights first."""
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.6.0"
        for layer in model.layers:
            # keras.applications' layer names hold "/" ("Conv/BatchNorm"): groups nest, so require, not create.
            group = handle.require_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{weight.name.split('/')[-1].split(':')[0]}_{i}:0" for i, weight in enumerate(weights)]
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, weight in zip(names, weights):
                group.create_dataset(name, data=weight.numpy())


@pytest.mark.parametrize("legacy", [False, True])
def test_keras_applications_file_maps_every_tensor(tmp_path, legacy):
    path = str(tmp_path / ("imagenet_like.h5" if legacy else "small.weights.h5"))
    reference = _reference_file(path, legacy=legacy)
    target = build_classifier("small", 0.75, 5, input_shape=(64, 64, 3))
    message = network.load_initial_weights(target, path, "small", 0.75)
    assert message == f"loaded 87 layers (208 tensors) from {path}; new (shape differs): logits"
    mapped = [layer for layer in target.layers if layer.weights][:-1]
    assert len(mapped) == len(reference) - 1
    for mine, theirs in zip(mapped, reference):
        for loaded, saved in zip(mine.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(loaded, saved)
    # The LR-ASPP backbone takes the same weights; its head is new.
    segmenter = build_lraspp("small", 0.75, 3)
    message = network.load_initial_weights(segmenter, path, "small", 0.75)
    assert message.startswith("loaded 86 layers (206 tensors)") and "new (not in the source): lraspp_conv" in message
    for layer in mapped[:-1]:  # every backbone layer (the classifier's head_conv is not in LR-ASPP)
        for loaded, saved in zip(segmenter.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(loaded, saved)


def test_keras_applications_file_without_top_and_wrong_alpha(tmp_path):
    path = str(tmp_path / "notop.weights.h5")
    saved = len(_reference_file(path, include_top=False))
    with warnings.catch_warnings(record=True) as caught:  # no warning per layer group Keras skips
        warnings.simplefilter("always")
        message = network.load_initial_weights(build_classifier("small", 0.75, 5, (64, 64, 3)), path, "small", 0.75)
    assert [str(w.message) for w in caught if "Skipping" in str(w.message)] == []
    # keras.applications' model without top ends at the last 1x1 conv (Keras 3: 86 weighted layers) or
    # after the head conv (Keras 2.6: 87); every layer it has loads, the rest are new.
    new = ["head_conv", "logits"][saved - 86:]
    assert saved in (86, 87) and message.startswith(f"loaded {saved} layers")
    assert message.endswith(f"new (not in the source): {', '.join(new)}")
    with pytest.raises(UserError, match=r"not a weights file of keras.applications.MobileNetV3Small at --alpha=1"):
        network.load_initial_weights(build_classifier("small", 1.0, 5, (64, 64, 3)), path, "small", 1.0)


def test_keras_applications_model_file_loads(tmp_path):
    # The whole keras.applications model saved (model.keras on Keras 3, .h5 on Keras 2.6): its layers are
    # named otherwise, and map by order as its weights files do.
    reference = keras.applications.MobileNetV3Small(input_shape=(224, 224, 3), alpha=0.75, weights=None)
    path = str(tmp_path / f"applications{stack.MODEL_FILE_SUFFIX}")
    reference.save(path)
    target = build_classifier("small", 0.75, 5, input_shape=(64, 64, 3))
    assert network.load_initial_weights(target, path, "small", 0.75) == (
        f"loaded 87 layers (208 tensors) from {path}; new (shape differs): logits")
    mapped = [layer for layer in target.layers if layer.weights][:-1]
    for mine, theirs in zip(mapped, [layer for layer in reference.layers if layer.weights]):
        for loaded, saved in zip(mine.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(loaded, saved)


def test_imagenet_says_when_the_download_cannot_be_reached(monkeypatch):
    hashes = []

    def no_internet(*args, **kwargs):
        hashes.append(kwargs.get("file_hash"))
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(keras.utils, "get_file", no_internet)
    with pytest.raises(UserError, match=r"--weights=imagenet: cannot download https://storage.googleapis.com/"
                                        r".*/weights_mobilenet_v3_small_224_0.75_float.h5 .*pass --weights=PATH/"):
        network.load_initial_weights(None, "imagenet", "small", 0.75)
    assert hashes == ["cb65d4e5be93758266aa0a7f2c6708b7"]  # keras.applications' sum of that file is checked
    with pytest.raises(UserError, match="at --alpha 0.75 and 1.0 only, not 0.5"):
        network.load_initial_weights(None, "imagenet", "small", 0.5)


def _stride_16_features(model):
    """The model's feature map after its first four stride-2 layers (stem, blocks 0, 1 and 3 of Small): the
    input of the second squeeze-and-excite pooling. Deeper maps of a randomly initialised network hardly
    depend on the image any more."""
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    return keras.Model(model.inputs, pools[1].input)


def test_same_padding_pads_as_keras_applications():
    # keras.applications pads each stride-2 layer explicitly (ZeroPadding2D, correct_pad); "same" padding
    # pads alike at even and odd sizes, so the same weights see the same pixels.
    rng = np.random.default_rng(0)
    for size in (96, 97):
        reference = keras.applications.MobileNetV3Small(input_shape=(size, size, 3), alpha=0.75, weights=None)
        for weight in reference.weights:  # BatchNormalization statistics that are not the identity
            if any(name in weight.name for name in ("gamma", "moving_variance")):
                weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
            elif any(name in weight.name for name in ("beta", "moving_mean")):
                weight.assign(rng.normal(0, 0.1, weight.shape).astype("float32"))
        ours = build_classifier("small", 0.75, 1000, (size, size, 3))
        for mine, theirs in zip([l for l in ours.layers if l.weights], [l for l in reference.layers if l.weights]):
            mine.set_weights(theirs.get_weights())
        images = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
        theirs = _stride_16_features(reference)
        expected = theirs(images).numpy()
        np.testing.assert_allclose(_stride_16_features(ours)(images).numpy(), expected, rtol=0, atol=1e-6)
        # The comparison sees a shift of one pixel (about 1e-4 here).
        assert np.abs(theirs(np.roll(images, 1, axis=(1, 2))).numpy() - expected).max() > 5e-5
