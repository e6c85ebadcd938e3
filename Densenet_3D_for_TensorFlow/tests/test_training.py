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
"""Training in-process on tiny synthetic cases: it learns, resumes with optimizer
state, refuses to overwrite a run, and stops cleanly on a non-finite loss."""

import os
import shutil

import numpy as np
import pytest

import config
import runner
from common import npu_utils
from common.npu_utils import UserError

# A tenth of dense24's widths and 30^3 patches (4^3 labelled centres): about
# 0.3 s per step of 4 patches on 2 cores.
TINY = ["--width_multiplier", "0.1", "-ws", "30", "-hs", "30", "-cs", "30", "-ps", "4", "-bs", "4",
        "--tumour_centres", "20", "--background_centres", "20", "-nc", "False", "-lr", "0.003",
        "--log_every_steps", "20", "--save_png", "False"]


def _setup(root, model_dir, *extra):
    import keras

    args = config.parse_args(["-r", root, "--model_dir", str(model_dir), *TINY, *extra])
    ctx = npu_utils.setup_device(args)
    keras.utils.set_random_seed(args.seed)
    data = runner.prepare_data(args, ctx, log=lambda line: None)
    model, optimizer = runner.build_network(args, ctx)
    return args, ctx, data, model, optimizer


def _mean_wt_dice(rows):
    return float(np.mean([row["wt_dice"] for row in rows]))


def test_short_training_learns_and_resumes_with_optimizer_state(synthetic_root, tmp_path):
    # With N4: without it, the synthetic bias field (+-20-30%) makes the brain's
    # edge look like tumour to so small a network (measured WT Dice 0.18 after
    # 80 steps without N4, 0.63 with it).
    data_root = str(tmp_path / "data")
    shutil.copytree(synthetic_root, data_root)
    args, ctx, data, model, optimizer = _setup(data_root, tmp_path / "run", "--mode", "train_test",
                                               "--max_steps", "100", "-nc", "True")
    untrained = _mean_wt_dice(runner.test(args, model, data, trained_here=True, log=lambda line: None))
    runner.train(args, ctx, model, optimizer, data, log=lambda line: None)
    trained = _mean_wt_dice(runner.test(args, model, data, trained_here=True, log=lambda line: None))
    # Measured: about 0.2 untrained, 0.6 after 80 steps.
    assert trained > 0.45 and trained > untrained + 0.25, (untrained, trained)
    assert os.path.exists(os.path.join(args.save_path, f"{data.test_cases[0].case_id}.nii.gz"))

    # A second run in the same model_dir must not silently start over...
    args2, ctx2, data2, model2, optimizer2 = _setup(data_root, tmp_path / "run", "--max_steps", "100",
                                                    "-nc", "True")
    with pytest.raises(UserError, match="-c True"):
        runner.train(args2, ctx2, model2, optimizer2, data2, log=lambda line: None)
    # ...and with -c it takes the weights and the optimizer's state from the last checkpoint.
    args3, ctx3, data3, model3, optimizer3 = _setup(data_root, tmp_path / "run", "--max_steps", "100",
                                                    "-nc", "True", "-c", "True")
    lines = []
    runner.train(args3, ctx3, model3, optimizer3, data3, log=lines.append)
    assert any("ckpt-100 (step 100)" in line for line in lines), lines
    assert int(optimizer3.iterations.numpy()) == 100
    for trained_weight, restored in zip(model.weights, model3.weights):
        np.testing.assert_array_equal(trained_weight.numpy(), restored.numpy())


def test_non_finite_loss_stops_without_saving(synthetic_root, tmp_path):
    # An absurd learning rate overflows the weights within a few steps.
    args, ctx, data, model, optimizer = _setup(synthetic_root, tmp_path, "-lr", "1e30", "--save_every_steps", "1",
                                               "--max_steps", "20")
    with pytest.raises(runner.NonFiniteLoss, match="non-finite") as raised:
        runner.train(args, ctx, model, optimizer, data, log=lambda line: None)
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(os.path.join(args.model_dir, "checkpoints"))
    assert latest is not None and latest in str(raised.value)
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        if name.startswith("model/"):
            value = reader.get_tensor(name)
            assert not np.issubdtype(np.asarray(value).dtype, np.floating) or np.isfinite(value).all(), name


def test_flag_checks():
    base = ["-r", "."]
    assert config.parse_args(base + ["-nc", "False"]).n4_correction is False
    assert config.parse_args(base).n4_correction is True
    assert config.parse_args(base + ["-mn", "dense24_nocorrection"]).n4_correction is False
    assert config.parse_args(base + ["-mn", "no-dense"]).model_name == "no_dense"
    assert config.parse_args(base + ["-c", "False"]).continue_training is False
    with pytest.raises(UserError, match="dense24_nocorrection"):
        config.parse_args(base + ["-mn", "dense24_nocorrection", "-nc", "True"])
    with pytest.raises(UserError, match="-ws=40 and -ps=12"):
        config.parse_args(base + ["-ws", "40"])
    assert config.parse_args(base + ["--benchmark"]).max_steps == 20


def test_weights_of_another_width_stop_with_one_line(tmp_path):
    import tensorflow as tf

    import tf_models

    prefix = tf.train.Checkpoint(model=tf_models.build_model("dense24", 0.1)).save(str(tmp_path / "ckpt"))
    narrow = tf_models.build_model("dense24", 0.1)
    assert runner.load_weights(narrow, str(tmp_path)) == prefix
    with pytest.raises(UserError, match=r"-lp .*ckpt-1: does not fit -mn dense24 \(--width_multiplier too\?\)"):
        runner.load_weights(tf_models.build_model("dense24", 0.2), prefix)
