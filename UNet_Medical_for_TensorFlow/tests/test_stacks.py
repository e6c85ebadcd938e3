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
"""What the Ascend stack (TF 2.6.5) asks, tested on whichever stack runs the suite: fixed-shape steps
traced once, run folders that move between the stacks, training on the stand-in adapter."""

import os
import re
import sys

import numpy as np
import pytest

from common import cluster, npu_utils, stack
from common.tests import processes
from common.tests.stacks import NPU_STAND_IN, other_stack_python
from conftest import MODEL_DIR

MAIN = os.path.join(MODEL_DIR, "main.py")
TINY = ["--base_filters=2", "--tile_size=188", "--batch_size=3", "--learning_rate=0.001", "--log_every=1"]


def run_main(*argv, python=sys.executable, env=None):
    return processes.run([python, MAIN, *argv], capture_output=True, text=True, timeout=240, cwd=MODEL_DIR,
                         env=env)


def metrics_of(text):
    return {k: float(v) for k, v in re.findall(r"^METRIC (\w+)=(\S+)", text, re.M)}


def test_inference_is_traced_once_for_every_image_size_and_partial_batch():
    """Overlap tiles of two image sizes and NVIDIA's resized slices, with last batches of 1 and 2 tiles:
    one trace of the fixed (batch, tile, tile, 1) step, and the padding does not change the output."""
    from data_loading import tiles
    from model import unet
    from runtime import inference

    stack.set_random_seed(0)
    model = unet.build_unet(base_filters=2, tile_size=188)  # 188 -> 4: many tiles per small image
    probability_fn = inference.make_probability_fn(model, use_xla=False, batch_size=4)
    before = npu_utils.TRACES["inference"]
    rng = np.random.default_rng(0)
    first, second = rng.uniform(-1, 1, (10, 10)), rng.uniform(-1, 1, (9, 14))  # 9 tiles (4+4+1), 12 (4+4+4)
    stitched = [tiles.predict_tiled(probability_fn, image.astype(np.float32), 188, 4, batch_size=4)
                for image in (first, second)]
    resized = np.stack([tiles.resize_and_pad(rng.uniform(-1, 1, (12, 12)), 4, 188) for _ in range(2)])[..., None]
    whole = probability_fn(resized)  # 2 of 4
    assert npu_utils.TRACES["inference"] - before == 1

    one_by_one = inference.make_probability_fn(model, use_xla=False, batch_size=1)
    np.testing.assert_allclose(tiles.predict_tiled(one_by_one, first.astype(np.float32), 188, 4), stitched[0],
                               atol=1e-6)
    np.testing.assert_allclose(np.concatenate([one_by_one(resized[:1]), one_by_one(resized[1:])]), whole, atol=1e-6)
    with pytest.raises(ValueError, match="expected 1 to 4 tiles, got 5"):
        probability_fn(np.zeros((5, 188, 188, 1), np.float32))


def test_training_step_is_traced_once(isbi_dir):
    """The training batches have one fixed shape (the last partial batch is dropped): one trace."""
    import tensorflow as tf

    from data_loading import pipeline, readers
    from model import unet
    from runtime import metrics

    data = readers.read_isbi(isbi_dir, need_test=False)
    dataset = pipeline.train_dataset(data.images[:5], data.labels[:5], 188, 4, 2, batch_size=3, seed=0,
                                     augment=True)
    assert [tuple(spec.shape) for spec in dataset.element_spec] == [(3, 188, 188, 1), (3, 4, 4, 2)]
    model = unet.build_unet(base_filters=2, tile_size=188)
    ctx = npu_utils.RunContext("cpu", npu_utils.Precision("float32"), False, cluster.Ranks(),
                               tf.distribute.get_strategy())
    optimizer = stack.keras.optimizers.Adam(1e-3)
    stack.build_optimizer(optimizer, model.trainable_variables)  # as runtime/training.build does
    step = npu_utils.make_train_step(ctx, model, optimizer,
                                     lambda x, y: metrics.total_loss(model(x, training=True), y,
                                                                     model.trainable_variables, 5e-4),
                                     name="unet_test_step")
    for images, onehot in dataset.take(3):
        assert np.isfinite(float(step(images, onehot)))
    assert npu_utils.TRACES["unet_test_step"] == 1


@pytest.mark.subprocess
def test_a_run_folder_moves_between_the_stacks(isbi_dir, tmp_path):
    """Trained on the other stack: evaluate (same figures as there), predict and fine-tune here; a resume
    (the optimizer state cannot cross) is refused in one line."""
    other = other_stack_python()
    run_dir = str(tmp_path / "run")
    trained = run_main("--data_dir", isbi_dir, "--model_dir", run_dir, "--exec_mode=train_and_evaluate",
                       "--crossvalidation_idx=1", "--max_steps=3", *TINY, python=other)
    assert trained.returncode == 0, trained.stderr[-2000:]
    checkpoint = os.path.join(run_dir, "checkpoints", "ckpt-3")
    assert os.path.isfile(checkpoint + ".weights.npz")

    evaluated = run_main("--data_dir", isbi_dir, "--model_dir", run_dir, "--exec_mode=evaluate")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f"[checkpoint] weights of {checkpoint} (written on TF " in evaluated.stdout
    assert f"[run] restored {checkpoint} (step 3)" in evaluated.stdout
    there, here = metrics_of(trained.stdout), metrics_of(evaluated.stdout)
    assert set(here) == set(there) and all(here[k] == pytest.approx(there[k], abs=1e-4) for k in there)

    predicted = run_main("--data_dir", isbi_dir, "--model_dir", run_dir, "--exec_mode=predict")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert os.path.isfile(os.path.join(run_dir, "predictions", "test-masks.tif"))

    tuned = run_main("--data_dir", isbi_dir, "--model_dir", str(tmp_path / "tuned"), "--max_steps=1",
                     "--pretrained_checkpoint", run_dir, *TINY)
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert f"[train] started from {checkpoint}: all layers" in tuned.stdout

    resumed = run_main("--data_dir", isbi_dir, "--model_dir", run_dir, "--max_steps=4", "--resume")
    assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
    error = resumed.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: --resume: {checkpoint} cannot be continued by this model: written on TF ")
    assert "optimizer state cannot be resumed here" in error


@pytest.mark.subprocess
def test_training_on_the_stand_in_adapter(isbi_dir, tmp_path):
    """main.py on the NPU code path (the stand-in npu_device of the r1.10 generation, auto_tune_mode,
    computes on the CPU), with the adapter's NpuLossScaleOptimizer (allow_mix_precision) and --autotune,
    then evaluate. DenseNet-3D's and MobileNetV3's tests take the current generation."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (NPU_STAND_IN, os.environ.get("PYTHONPATH")) if p),
               NPU_STAND_IN_GENERATION="r1.10")
    run_dir = str(tmp_path / "run")
    trained = run_main("--data_dir", isbi_dir, "--model_dir", run_dir, "--exec_mode=train_and_evaluate",
                       "--crossvalidation_idx=0", "--max_steps=2", "--precision_mode=allow_mix_precision",
                       "--autotune", *TINY, env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "[device] NPU 0, precision allow_mix_precision, rank 0 of 1" in trained.stdout
    assert re.findall(r"TRAIN step=(\d+)", trained.stdout) == ["1", "2"]
    assert 0 <= metrics_of(trained.stdout)["eval_dice_score"] <= 1
