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
"""The network: pinned size of the full model, shapes, tile-size errors, config round trip."""

import numpy as np
import pytest

from common.stack import keras
from model import tile_sizes, unet


def test_full_model_matches_nvidia():
    model = unet.build_unet()
    assert model.count_params() == 34_512_258
    assert model.input_shape == (None, 572, 572, 1)
    assert model.output_shape == (None, 388, 388, 2)
    assert tile_sizes.level_sizes(572) == {"skips": [568, 280, 136, 64], "upsampled": [56, 104, 200, 392],
                                     "output": 388}


def test_small_model_forward_shape_and_dtype():
    model = unet.build_unet(base_filters=2, tile_size=188, n_classes=3)
    out = model(np.zeros((2, 188, 188, 1), "float32"))
    assert out.shape == (2, 4, 4, 3)
    assert out.dtype == "float32"


@pytest.mark.parametrize("bad", [570, 100, 573])
def test_invalid_tile_size_names_nearest_valid(bad):
    with pytest.raises(ValueError) as error:
        unet.build_unet(base_filters=2, tile_size=bad)
    for size in tile_sizes.nearest_valid_tile_sizes(bad):
        assert tile_sizes.level_sizes(size) is not None
        assert str(size) in str(error.value)
    assert "572" in str(tile_sizes.nearest_valid_tile_sizes(570))


@pytest.mark.parametrize("kwargs", [{"base_filters": 0}, {"n_classes": 1}, {"dropout_rate": 1.0}])
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        unet.build_unet(tile_size=188, **kwargs)


def test_config_round_trip():
    model = unet.build_unet(base_filters=2, tile_size=188)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 188, 188, 1)).astype("float32")
    np.testing.assert_allclose(model(x), clone(x), rtol=1e-5, atol=1e-6)
