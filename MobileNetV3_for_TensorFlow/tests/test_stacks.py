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
"""What the two stacks and an NPU demand: steps traced once, the same optimizer steps on both,
the stand-in Ascend adapter, and run folders that move between TF 2.6.5 / Keras 2.6 and TF 2.21 / Keras 3.

run_tests.sh runs this file on each stack, so the cross-stack test covers both directions.
"""

import csv
import json
import os
import sys

import numpy as np
import pytest

import main
from common import checkpoints, npu_utils, stack
from common.stack import keras
from common.tests import processes
from common.tests.stacks import NPU_STAND_IN, other_stack_python
from data_loading import synthetic
from model.mobilenet_v3 import build_classifier
from model import network
from runtime import inference

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 3 classes of 2 training and 1 validation 32x32 images: 3 steps of 2 per epoch, and the
# validation split ends in a batch of 1.
TINY_RUN = ["--class_number=0", "--height=32", "--width=32", "--alpha=0.5", "--batch=2", "--mode=train"]


def _classes(folder, classes=3):
    synthetic.write_classification(str(folder), classes=classes, train_per_class=2, validation_per_class=1,
                                   size=32)
    return folder


@pytest.mark.slow
def test_steps_are_traced_once_also_for_the_last_partial_batch(tmp_path, capsys):
    data = _classes(tmp_path / "data")
    before = dict(npu_utils.TRACES)
    assert main.main([f"--data_path={data}", *TINY_RUN, "--epochs=2", f"--model_dir={tmp_path / 'run'}"]) == 0
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("TRAIN step=")]) == 6
    # 6 training steps and 2 evaluations of 2 + 1 images: one trace each.
    traced = {name: count - before.get(name, 0) for name, count in npu_utils.TRACES.items()}
    assert traced["train_step"] == 1 and traced[inference.INFERENCE_STEP] == 1
    # Prediction pads its last batch too: 5 images in batches of 4 (the same model, so no new trace).
    model, names = network.load_saved(str(tmp_path / "run"))
    images = sorted(str(path) for path in (data / "train").rglob("*") if path.is_file())[:5]
    before = npu_utils.TRACES[inference.INFERENCE_STEP]
    inference.predict(model, names, images, "classification", 32, 32, 4, str(tmp_path / "p1.csv"))
    inference.predict(model, names, images[:3], "classification", 32, 32, 4, str(tmp_path / "p2.csv"))
    assert npu_utils.TRACES[inference.INFERENCE_STEP] == before + 1
    with open(tmp_path / "p1.csv", encoding="utf-8") as handle:
        first = list(csv.DictReader(handle))
    with open(tmp_path / "p2.csv", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == first[:3]  # padding changes no prediction


# Five RMSprop steps with decoupled weight decay and a moving average on an LR-ASPP model from the
# weights in argv[1]; prints the losses and the averaged weights' sum.
FIVE_STEPS = """
import sys, types
import numpy as np
import tensorflow as tf
from common import checkpoints, stack
from model.lraspp import build_lraspp
from model.recipe import MovingAverage, WarmupDecay, averaged_variables, make_optimizer
from runtime.metrics import make_loss
model = build_lraspp("small", 0.5, 3, bn_momentum=0.9)
checkpoints.load_portable_weights(model, sys.argv[1])
rng = np.random.default_rng(0)
images = tf.constant(rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
masks = tf.constant(rng.integers(0, 3, (2, 32, 32)).astype("int32"))
ctx = types.SimpleNamespace(precision=types.SimpleNamespace(loss_scaling=False, policy="float32"),
                            wrap_optimizer=lambda optimizer, initial_scale=None: optimizer)
flags = types.SimpleNamespace(optimizer="rmsprop", weight_decay=0.01, weight_decay_mode="decoupled", loss_scale=None)
optimizer = make_optimizer(ctx, flags, WarmupDecay(0.003, 5))
loss_fn = make_loss(model, "segmentation", 3, 0.0)
stack.build_optimizer(optimizer, model.trainable_variables)
average = MovingAverage(averaged_variables(model), 0.5)
for step in range(1, 6):
    with tf.GradientTape() as tape:
        loss = loss_fn(images, masks)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    average.update(tf.constant(step))
    print("loss", float(loss))
with average.swapped():
    print("average", float(sum(tf.reduce_sum(v) for v in model.trainable_variables)))
"""


@pytest.mark.subprocess
def test_decay_and_average_give_the_same_steps_on_both_stacks(tmp_path, python_env):
    from model.lraspp import build_lraspp
    stack.set_random_seed(0)
    checkpoints.save_portable_weights(build_lraspp("small", 0.5, 3, bn_momentum=0.9), str(tmp_path / "init.npz"))
    env = dict(python_env, PYTHONPATH=os.pathsep.join([MODEL_DIR, os.path.dirname(MODEL_DIR)]))
    outputs = []
    for python in (sys.executable, other_stack_python()):
        result = processes.run([python, "-c", FIVE_STEPS, str(tmp_path / "init.npz")], cwd=MODEL_DIR, env=env,
                               capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append([float(line.split()[1]) for line in result.stdout.splitlines()
                        if line.startswith(("loss ", "average "))])
    assert len(outputs[0]) == 6 and outputs[0][0] > outputs[0][4]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5)


@pytest.mark.subprocess
def test_training_on_the_stand_in_adapter(tmp_path, python_env):
    data = _classes(tmp_path / "data")
    env = dict(python_env, PYTHONPATH=os.pathsep.join([NPU_STAND_IN, python_env.get("PYTHONPATH", "")]))
    result = processes.run([sys.executable, "main.py", f"--data_path={data}", *TINY_RUN, "--epochs=1",
                            "--precision_mode=allow_mix_precision", "--recipe=paper",
                            f"--model_dir={tmp_path / 'run'}"],
                           cwd=MODEL_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[device] NPU 0, precision allow_mix_precision" in result.stdout
    assert "TRAIN step=3 " in result.stdout and "METRIC top1=" in result.stdout
    assert os.path.isfile(tmp_path / "run" / "checkpoints" / "ckpt-3.weights.npz")


@pytest.mark.subprocess
def test_run_folder_of_the_other_stack(tmp_path, python_env, capsys):
    other = other_stack_python()
    data = _classes(tmp_path / "data")
    run = tmp_path / "run"
    result = processes.run([other, "main.py", f"--data_path={data}", *TINY_RUN, "--mode=train_and_evaluate",
                            "--epochs=1", f"--model_dir={run}"],
                           cwd=MODEL_DIR, env=python_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    top1_there = [line for line in result.stdout.splitlines() if line.startswith("METRIC top1=")][-1]
    portable = run / "best" / network.PORTABLE_MODEL_FILE
    assert portable.is_file() and not (run / "best" / network.MODEL_FILE).exists()
    # Evaluate, predict and export rebuild the network from config.json and read the portable weights.
    assert main.main(["--mode=evaluate", f"--data_path={data}", f"--model_dir={run}"]) == 0
    out = capsys.readouterr().out
    assert f"[model] using {portable}" in out and "weights read by layer name" in out
    assert [line for line in out.splitlines() if line.startswith("METRIC top1=")][-1] == top1_there
    assert main.main(["--mode=predict", f"--input={data / 'validation' / 'class_1'}", f"--model_dir={run}"]) == 0
    with open(run / "predictions.csv", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 1
    assert main.main(["--mode=export", f"--model_dir={run}"]) == 0
    assert (run / "export" / "saved_model" / "saved_model.pb").is_file()
    assert keras.models.load_model(str(run / "export" / network.MODEL_FILE), compile=False).output_shape == (None, 3)
    # Fine-tuning on 4 classes starts from its model or its checkpoint: a new classifier, the rest loaded.
    four = _classes(tmp_path / "four", classes=4)
    capsys.readouterr()
    for source, shown in ((run, portable), (run / "checkpoints", run / "checkpoints" / "ckpt-3")):
        assert main.main([f"--data_path={four}", *TINY_RUN, "--epochs=1", "--max_steps=1", f"--weights={source}",
                          f"--model_dir={tmp_path / 'tuned'}", "--resume=False"]) == 0
        assert (f"[train] loaded 87 layers (208 tensors) from {shown}; new (shape differs): logits"
                in capsys.readouterr().out)
    tuned = build_classifier("small", 0.5, 4, input_shape=(32, 32, 3))
    network.load_initial_weights(tuned, str(run))
    np.testing.assert_array_equal(tuned.get_layer("block5_expand").get_weights()[0],
                                  np.load(portable)["block5_expand/0"])
    # Resuming its optimizer state here is refused in one line; the run folder stays as it was.
    saved = (run / "config.json").read_text()
    with pytest.raises(SystemExit) as stop:
        main.main([f"--data_path={data}", *TINY_RUN, "--epochs=2", "--resume=True", f"--model_dir={run}"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and last.startswith(f"error: --resume: {run / 'checkpoints' / 'ckpt-3'} cannot be "
                                                    "continued by this model")
    assert "checkpoints do not cross between Keras 2 and Keras 3" in last
    assert (run / "config.json").read_text() == saved and json.loads(saved)["train_epochs"] == 1
