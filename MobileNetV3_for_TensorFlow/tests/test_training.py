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
"""Short real trainings: classification learns (through test/train_full_1p.sh),
segmentation beats chance, a SIGKILLed script run resumes (one and two
workers), a non-finite loss stops, the performance script, predict and export."""

import csv
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import main
from common.stack import keras
from common.tests import processes
from common.tests.summaries import images_over_time
from model import network
from runtime import inference

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 32x32 crops of the 64x64 synthetic images: 4 classes learn to about 0.9 validation top-1 in 8 epochs.
SMALL_RUN = ["--class_number=0", "--height=32", "--width=32", "--alpha=0.5", "--bn_momentum=0.9"]
# One step on 32x32 images: enough to write a checkpoint through the real training loop.
TINY_RUN = ["--class_number=0", "--height=32", "--width=32", "--alpha=0.5", "--batch=2", "--epochs=1",
            "--max_step=1", "--mode=train"]
CASE_KEYS = ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
             "ActualLoss", "E2ETrainingTime"]


def _case_log(output_dir, case_name):
    with open(os.path.join(output_dir, f"{case_name}.log"), encoding="utf-8") as handle:
        return dict(line.strip().split(" = ", 1) for line in handle if " = " in line)


def _script(name, args, env):
    # The scripts write their output/<device>/ folders into env's MZ_OUTPUT_DIR (tests/conftest.py).
    return processes.run(["bash", f"test/{name}", *args], cwd=MODEL_DIR, env=env,
                         capture_output=True, text=True, timeout=600)


def _kill_after_checkpoint(command, env, run, step):
    """Start ``command`` in its own process group and SIGKILL the group once ``run`` holds checkpoint ``step``."""
    # The state file names a checkpoint only once all its files are written.
    state = run / "checkpoints" / "checkpoint"
    with processes.started(command, timeout=600, cwd=MODEL_DIR, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) as process:
        deadline = time.time() + 300
        while not (state.exists() and f'"ckpt-{step}"' in state.read_text()) and time.time() < deadline:
            assert process.poll() is None, "the run ended before it was killed"
            time.sleep(0.1)
    assert f'"ckpt-{step}"' in state.read_text()


def _segment_steps(run, segment, device=0):
    """The TRAIN lines of ``run``'s segment log as ``[(step, images_per_sec)]``, and that log's text."""
    text = (run / "logs" / f"segment-{segment:03d}" / f"train_{device}.log").read_text()
    return [(int(line.split("step=")[1].split()[0]), float(line.split("images_per_sec=")[1].split()[0]))
            for line in text.splitlines() if line.startswith("TRAIN step=")], text


def _resumed_step(log_text):
    """The step of the checkpoint a segment's log says it resumed from."""
    line = [line for line in log_text.splitlines() if line.startswith("[checkpoint] resumed from")][-1]
    return int(line.rsplit("ckpt-", 1)[1])


@pytest.fixture(scope="module")
def trained(synthetic_root, python_env):
    """Train Small (alpha 0.5, 32x32, 10 steps per epoch) on the synthetic class folders via
    train_full_1p.sh, SIGKILLed once it saved step 20 and run again with the same command.

    Its run folder lies inside the output folder, which every script run recreates: it must survive.
    Yields the second run's result, the output folder of device 0 and the run folder.
    """
    output_dir = Path(python_env["MZ_OUTPUT_DIR"]) / "0"
    run = output_dir / "killed_run"
    shutil.rmtree(run, ignore_errors=True)
    command = ["bash", "test/train_full_1p.sh", f"--data_path={synthetic_root / 'cls'}", *SMALL_RUN,
               "--batch_size=16", "--train_epochs=8", "--learning_rate=0.002", "--checkpoint_every=10",
               f"--ckpt_path={run}"]
    _kill_after_checkpoint(command, python_env, run, step=20)
    result = processes.run(command, cwd=MODEL_DIR, env=python_env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield result, output_dir, run
    shutil.rmtree(run, ignore_errors=True)


@pytest.mark.subprocess
def test_full_script_learns_and_writes_every_key(trained):
    result, output_dir, run = trained
    assert "Final Train Accuracy" in result.stdout
    case = _case_log(output_dir, "MobileNetV3_for_TensorFlow_bs16_1p_acc")
    assert set(CASE_KEYS + ["TrainAccuracy"]) <= set(case)
    assert case["CaseName"] == "MobileNetV3_for_TensorFlow_bs16_1p_acc" and case["BatchSize"] == "16"
    # Four classes: chance is 0.25.
    assert float(case["TrainAccuracy"]) >= 0.6
    for name in (f"best/{network.MODEL_FILE}", "class_names.json", "history.csv", "eval/confusion_matrix.png",
                 "eval/confusion_matrix.txt", "checkpoints/checkpoint"):
        assert os.path.exists(run / name), name
    # One row per epoch over both segments (an epoch whose row the kill cut off is not trained again).
    with open(run / "history.csv", encoding="utf-8") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs[0] == 1 and epochs[-1] == 8 and epochs == sorted(set(epochs)) and len(epochs) >= 7


@pytest.mark.subprocess
def test_killed_script_run_keeps_the_whole_run(trained):
    _, output_dir, run = trained
    killed, _ = _segment_steps(run, 1)
    resumed, text = _segment_steps(run, 2)
    start = _resumed_step(text)
    assert killed[0][0] == 1 and killed[-1][0] >= start >= 20
    assert [step for step, _ in resumed] == list(range(start + 1, 81))
    # The summary and the loss file speak for the whole run.
    case = _case_log(output_dir, "MobileNetV3_for_TensorFlow_bs16_1p_acc")
    assert (case["RunSteps"], case["RunSegments"], case["SegmentSteps"]) == ("1-80", "2", f"{start + 1}-80")
    assert len((output_dir / "train_MobileNetV3_for_TensorFlow_bs16_1p_acc_loss.txt").read_text().split()) == 80
    # ActualFPS: the images over the time of the resumed segment's steps after its own warm-up
    # (train_full_1p.sh: 2 steps), so without the step that traced the graph again; the epoch
    # boundaries' slow steps count by their time, not as one line's rate among many.
    assert float(case["ActualFPS"]) == pytest.approx(images_over_time(text, 16, 2)[0], abs=0.006)
    assert float(case["ActualFPS"]) != pytest.approx(images_over_time(text, 16, 0)[0], abs=0.006)


@pytest.mark.subprocess
def test_predict_and_export(trained, synthetic_root, tmp_path):
    _, _, run = trained
    model, names = network.load_saved(str(run))
    folder = synthetic_root / "cls" / "validation" / "class_2"
    inference.predict(model, names, sorted(str(p) for p in folder.iterdir()), "classification", 32, 32, 8,
                      str(tmp_path / "p.csv"))
    with open(tmp_path / "p.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and sum(r["class"] == "class_2" for r in rows) >= 5
    inference.export(model, names, str(tmp_path / "export"))
    assert os.path.isfile(tmp_path / "export" / "saved_model" / "saved_model.pb")
    assert keras.models.load_model(tmp_path / "export" / network.MODEL_FILE).output_shape == (None, 4)


@pytest.mark.subprocess
def test_performance_script_unknown_flag_and_no_data(python_env):
    # The performance run itself: test_performance_script_is_a_timed_training_only.
    result = _script("train_performance_1p.sh", ["--data_path=/tmp", "--colour=red"], python_env)
    assert result.returncode == 2 and "unrecognized arguments: --colour=red" in result.stderr
    result = _script("train_full_1p.sh", [], python_env)
    assert result.returncode == 2 and result.stderr.strip() == '[Error] para "data_path" must be config'
    result = _script("train_full_1p.sh", ["--data_path", "/tmp"], python_env)  # checked before anything runs
    assert result.returncode == 2 and "/tmp/train" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_segmentation_training_beats_chance(synthetic_root, tmp_path, capsys):
    # 36 steps of 4 images: at 18 steps of 8 the inference-mode network still predicted the background
    # everywhere for 4 of 5 initialisations tried (seeds 0-2 on the two stacks); at 36 steps of 4, 5 of 5
    # reached a validation mIoU of 0.71-0.78.
    main.main([f"--data_path={synthetic_root / 'seg'}", "--task=segmentation", "--class_number=3",
               "--height=64", "--width=64", "--alpha=0.5", "--bn_momentum=0.9", "--batch=4", "--epochs=6",
               "--learning_rate=0.003", "--mode=train_and_evaluate", f"--modeldir={tmp_path}"])
    out = capsys.readouterr().out
    losses = [float(line.split("loss=")[1].split()[0]) for line in out.splitlines() if line.startswith("TRAIN")]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    miou = float([line for line in out.splitlines() if line.startswith("METRIC miou=")][-1].split("=")[1])
    # Predicting one class everywhere gives at most about 1/3 mean IoU over 3 classes.
    assert miou > 0.4
    assert os.path.isfile(tmp_path / "eval" / "confusion_matrix.png")
    # evaluate takes the task and the input size (64, not the default 224) from the training run.
    assert main.main(["--mode=evaluate", f"--data_path={synthetic_root / 'seg'}", f"--model_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert (f"[flags] from {tmp_path / 'config.json'}: --task=segmentation --model=small --alpha=0.5 --height=64 "
            "--width=64 --class_number=3") in out
    assert float([line for line in out.splitlines() if line.startswith("METRIC miou=")][-1].split("=")[1]) == miou
    assert "class 2 2: IoU" in out
    model, names = network.load_saved(str(tmp_path))
    images = sorted(str(p) for p in (synthetic_root / "seg" / "validation" / "images").iterdir())[:3]
    inference.predict(model, names, images, "segmentation", 64, 64, 2, str(tmp_path / "masks"))
    mask = np.asarray(Image.open(tmp_path / "masks" / "0000.png"))
    assert mask.shape == (64, 64) and mask.max() < 3


@pytest.mark.slow
def test_non_finite_loss_stops_with_one_line(tmp_path, capsys):
    # 2 steps per epoch: Adam's first step at learning rate 1e30 makes the second loss non-finite.
    with pytest.raises(SystemExit) as stop:
        main.main([f"--data_path={_tiny_classes(tmp_path / 'data', 2)}", *TINY_RUN, "--max_step=0", "--epochs=3",
                   "--save_interval=1", "--learning_rate=1e30", f"--modeldir={tmp_path / 'run'}"])
    assert stop.value.code == 3
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: non-finite loss") and "the last good checkpoint stays" in last
    bad_step = int(last.split("at step ")[1].split(":")[0])
    saved = sorted(int(name[5:-6]) for name in os.listdir(tmp_path / "run" / "checkpoints")
                   if name.endswith(".index"))
    assert saved and max(saved) == bad_step - 1


def test_weights_load_backbone_and_new_classifier(tmp_path):
    from model.mobilenet_v3 import build_classifier
    from model.lraspp import build_lraspp
    source = build_classifier("small", 0.5, 4, input_shape=(64, 64, 3))
    network.save_model(source, ["a", "b", "c", "d"], str(tmp_path))
    target = build_classifier("small", 0.5, 7, input_shape=(64, 64, 3))
    message = network.load_initial_weights(target, str(tmp_path))
    assert message.endswith("new (shape differs): logits")
    np.testing.assert_array_equal(target.get_layer("block5_expand").get_weights()[0],
                                  source.get_layer("block5_expand").get_weights()[0])
    segmenter = build_lraspp("small", 0.5, 3)
    assert "loaded" in network.load_initial_weights(segmenter, str(tmp_path / network.MODEL_FILE))
    with pytest.raises(network.UserError, match="neither"):
        network.load_initial_weights(target, str(tmp_path / "nothing"))
    network.set_backbone_trainable(target, False)
    trainable = {layer.name for layer in target.layers if layer.trainable_weights}
    assert trainable == {"head_conv", "logits"}


@pytest.mark.slow
def test_benchmark_times_training_only(tmp_path, capsys):
    # 2 classes of 2 images at batch 2: 2 steps per epoch, 2 epochs; train_and_evaluate evaluates nothing.
    run = tmp_path / "run"
    assert main.main([f"--data_path={_tiny_classes(tmp_path / 'data', 2)}", *TINY_RUN, "--max_steps=0",
                      "--train_epochs=2", "--checkpoint_every=1", "--mode=train_and_evaluate", "--benchmark",
                      "--recipe=paper", f"--model_dir={run}"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("TRAIN ")] == [
        "step=1", "step=2", "step=3", "step=4"]
    assert "[train] --benchmark: 4 steps timed; no checkpoint, validation or model saved" in out
    assert "METRIC" not in out
    assert sorted(path.name for path in run.iterdir()) == ["config.json"]
    with pytest.raises(SystemExit) as stop:
        main.main(["--mode=evaluate", "--benchmark", f"--model_dir={run}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == "error: --benchmark times training; --mode=evaluate does not train"


def _tiny_classes(folder, classes):
    """Class folders of 2 training and 1 validation 32x32 images per class."""
    from data_loading import synthetic
    synthetic.write_classification(str(folder), classes=classes, train_per_class=2, validation_per_class=1,
                                   size=32)
    return folder


def _restored(prefix, classes):
    """A Small 0.5 classifier restored from ``prefix`` by tf.train.Checkpoint (the reference)."""
    from model.mobilenet_v3 import build_classifier
    model = build_classifier("small", 0.5, classes, input_shape=(32, 32, 3))
    tf.train.Checkpoint(model=model).read(prefix).expect_partial().assert_existing_objects_matched()
    return model


@pytest.fixture(scope="module")
def three_class_checkpoints(tmp_path_factory):
    """The checkpoints/ folder of a one-step training run on 3 classes."""
    root = tmp_path_factory.mktemp("three_classes")
    assert main.main([f"--data_path={_tiny_classes(root / 'data', 3)}", *TINY_RUN,
                      f"--modeldir={root / 'run'}"]) == 0
    return root / "run" / "checkpoints"


@pytest.mark.slow
def test_weights_from_checkpoint_of_other_class_count(three_class_checkpoints, tmp_path, capsys):
    from model.mobilenet_v3 import build_classifier
    prefix = tf.train.latest_checkpoint(str(three_class_checkpoints))
    capsys.readouterr()
    # The run also ends during --freeze_backbone_epochs: both saved models must still be normal trainable models.
    assert main.main([f"--data_path={_tiny_classes(tmp_path / 'data', 4)}", *TINY_RUN, "--freeze_backbone_epochs=2",
                      f"--weights={three_class_checkpoints}", f"--modeldir={tmp_path / 'run'}"]) == 0
    out = capsys.readouterr().out
    assert f"[train] loaded 87 layers (208 tensors) from {prefix}; new (shape differs): logits" in out
    assert "[train] best top1=" in out
    fresh = build_classifier("small", 0.5, 4, input_shape=(32, 32, 3))
    for path in (tmp_path / "run" / network.MODEL_FILE, tmp_path / "run" / "best" / network.MODEL_FILE):
        saved = keras.models.load_model(path, compile=False)
        assert [layer.name for layer in saved.layers if not layer.trainable] == []
        assert len(saved.trainable_weights) == len(fresh.trainable_weights)
    source = _restored(prefix, 3)
    target = build_classifier("small", 0.5, 4, input_shape=(32, 32, 3))
    network.load_initial_weights(target, prefix)
    # A trainable weight (stored under the optimizer's key) and BN moving statistics (under the model's).
    for name in ("block5_expand", "block5_expand_bn"):
        for loaded, saved in zip(target.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(loaded, saved)
    assert target.get_layer("logits").kernel.shape[-1] == 4 and target.get_layer("logits").bias.shape == (4,)


@pytest.mark.slow
def test_weights_from_checkpoint_of_same_class_count_loads_everything(three_class_checkpoints, tmp_path):
    from model.lraspp import build_lraspp
    from model.mobilenet_v3 import build_classifier
    prefix = tf.train.latest_checkpoint(str(three_class_checkpoints))
    source = _restored(prefix, 3)
    # A checkpoint without its portable weights file (written before they were) loads whole (tf.train.Checkpoint).
    for path in three_class_checkpoints.glob(os.path.basename(prefix) + ".*"):
        if not path.name.endswith(".weights.npz"):
            shutil.copy(path, tmp_path)
    legacy = str(tmp_path / os.path.basename(prefix))
    for checkpoint, message in ((prefix, f"loaded 88 layers (210 tensors) from {prefix}"),
                                (legacy, f"loaded the whole network from {legacy}")):
        target = build_classifier("small", 0.5, 3, input_shape=(32, 32, 3))
        assert network.load_initial_weights(target, checkpoint) == message
        for loaded, saved in zip(target.weights, source.weights):
            np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    with pytest.raises(network.UserError, match="loads only into the same network and class count"):
        network.load_initial_weights(build_classifier("small", 0.5, 4, input_shape=(32, 32, 3)), legacy)
    target = build_classifier("small", 0.5, 3, input_shape=(32, 32, 3))
    assert network.load_initial_weights(target, str(three_class_checkpoints)) == (
        f"loaded 88 layers (210 tensors) from {prefix}")
    # The other task's head is new, as with a .keras model.
    message = network.load_initial_weights(build_lraspp("small", 0.5, 3), prefix)
    assert message.startswith("loaded 86 layers (206 tensors)") and message.endswith("lraspp_high_classifier, lraspp_low_classifier")
    for other in (build_classifier("large", 0.5, 3, input_shape=(32, 32, 3)),
                  build_classifier("small", 0.75, 3, input_shape=(32, 32, 3))):
        with pytest.raises(network.UserError, match=f"--weights={prefix}: .* another --model or --alpha"):
            network.load_initial_weights(other, prefix)


@pytest.mark.slow
def test_evaluate_takes_classes_from_the_run_folder_not_from_weights(three_class_checkpoints, tmp_path, capsys):
    from model.mobilenet_v3 import build_classifier
    run = three_class_checkpoints.parent
    data = run.parent / "data"
    # --weights, as for fine-tuning: evaluate must still use the run folder's model.
    network.save_model(build_classifier("small", 0.5, 4, input_shape=(32, 32, 3)), list("abcd"),
                       str(tmp_path / "source"))
    capsys.readouterr()
    # The default class_number (2) differs from the model's 3 classes; no --class_number is needed.
    assert main.main(["--mode=evaluate", f"--weights={tmp_path / 'source'}", f"--data_path={data}",
                      f"--modeldir={run}"]) == 0
    out = capsys.readouterr().out
    assert f"[model] using {run / 'best' / network.MODEL_FILE}" in out
    assert f"weights={tmp_path / 'source'} is only where training starts" in out
    assert (f"[flags] from {run / 'config.json'}: --task=classification --model=small --alpha=0.5 --height=32 "
            "--width=32 --class_number=3") in out
    assert "METRIC top1=" in out
    # A flag that contradicts the training run is refused, naming its config.json.
    with pytest.raises(SystemExit) as stop:
        main.main(["--mode=predict", f"--input={data}", "--height=64", f"--model_dir={run}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --height=64 contradicts the training run in {run / 'config.json'}, which used --height=32 "
        "(its model was trained so); leave --height out")
    # A folder of some of the model's classes is evaluated on them, matched by name; an unknown class is refused.
    assert main.main(["--mode=evaluate", f"--data_path={_tiny_classes(tmp_path / 'two', 2)}",
                      f"--modeldir={run}"]) == 0
    out = capsys.readouterr().out
    assert (f"[data] {tmp_path / 'two' / 'validation'} holds 2 of the 3 classes (matched by name); "
            "none of ['class_2']") in out
    assert "METRIC top1=" in out and "class 2 class_2: accuracy nan" in out
    with pytest.raises(SystemExit) as stop:
        main.main(["--mode=evaluate", f"--data_path={_tiny_classes(tmp_path / 'four', 4)}", f"--modeldir={run}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'four' / 'validation'} holds the class folders ['class_3'], which the model does not "
        "have (its classes: ['class_0', 'class_1', 'class_2'])")


@pytest.mark.slow
def test_restore_failure_keeps_config_and_resume_false_starts_over(three_class_checkpoints, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(three_class_checkpoints.parent, run)
    saved = (run / "config.json").read_text()
    four = _tiny_classes(tmp_path / "four", 4)
    # Without --resume a folder that holds a checkpoint is refused in one line.
    with pytest.raises(SystemExit) as stop:
        main.main([f"--data_path={four}", *TINY_RUN, f"--model_dir={run}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --model_dir={run} already holds a checkpoint (ckpt-1): --resume=True continues that run, "
        "--resume=False starts over (deleting its checkpoints), or choose another --model_dir")
    # The run's checkpoint has 3 classes: resuming it on 4 fails, and config.json stays the old run's.
    with pytest.raises(SystemExit) as stop:
        main.main([f"--data_path={four}", *TINY_RUN, "--resume=True", f"--model_dir={run}"])
    assert stop.value.code == 2 and "--resume=False starts over" in capsys.readouterr().err
    assert (run / "config.json").read_text() == saved
    # --resume=False does not load it: the new run's checkpoints replace the old ones, and
    # --keep_checkpoints=1 keeps the newest alone. (The run also takes the paper's recipe with a
    # fast-moving average, for the test below.)
    assert main.main([f"--data_path={four}", *TINY_RUN, "--resume=False", f"--model_dir={run}", "--max_steps=2",
                      "--checkpoint_every=1", "--keep_checkpoints=1", "--recipe=paper",
                      "--ema_momentum=0.5"]) == 0
    assert "--resume=False: deleted the checkpoints" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["class_number"] == 4
    assert tf.train.get_checkpoint_state(str(run / "checkpoints")).all_model_checkpoint_paths == [
        str(run / "checkpoints" / "ckpt-2")]
    assert sorted(path.name for path in (run / "checkpoints").glob("ckpt-*")) == [
        "ckpt-2.data-00000-of-00001", "ckpt-2.index", "ckpt-2.weights.npz"]
    _check_averaged_weights_saved(run)


def _check_averaged_weights_saved(run):
    """The paper recipe's settings are in config.json; the saved models hold the moving average."""
    saved = json.loads((run / "config.json").read_text())
    assert (saved["optimizer"], saved["weight_decay"], saved["ema_momentum"]) == ("rmsprop", 1e-5, 0.5)
    trained = _restored(tf.train.latest_checkpoint(str(run / "checkpoints")), saved["class_number"])
    averaged = keras.models.load_model(run / network.MODEL_FILE, compile=False)
    best = keras.models.load_model(run / "best" / network.MODEL_FILE, compile=False)
    kernel = "block5_expand"
    assert not np.allclose(averaged.get_layer(kernel).get_weights()[0], trained.get_layer(kernel).get_weights()[0])
    np.testing.assert_array_equal(averaged.get_layer(kernel).get_weights()[0], best.get_layer(kernel).get_weights()[0])


@pytest.mark.subprocess
def test_performance_script_is_a_timed_training_only(python_env, tmp_path):
    data = _tiny_classes(tmp_path / "data", 2)
    result = _script("train_performance_1p.sh", [f"--data_path={data}", "--class_number=0", "--height=32",
                                                 "--width=32", "--alpha=0.5", "--batch_size", "2", "--max_steps=8"],
                     python_env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = os.path.join(python_env["MZ_OUTPUT_DIR"], "0")
    case = _case_log(output, "MobileNetV3_for_TensorFlow_bs2_1p_perf")
    latencies = ["latency_ms_mean", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99"]
    assert set(case) == set(CASE_KEYS + latencies)  # the keys of every model's performance run
    assert not {"checkpoints", "best"} & set(os.listdir(os.path.join(output, "ckpt")))  # no checkpoint, no best/
    # One speed: images over the time of steps 6-8, after the 5 warm-up steps
    with open(os.path.join(output, "train_0.log"), encoding="utf-8") as log:
        assert float(case["ActualFPS"]) == pytest.approx(images_over_time(log.read(), 2, 5)[0], abs=0.006)


@pytest.mark.subprocess
def test_full_8p_script_on_two_ranks_killed_and_rerun(python_env, tmp_path):
    # The performance scripts are --benchmark runs, which keep no checkpoints: the accuracy script resumes.
    data = _tiny_classes(tmp_path / "data", 2)  # 4 training images: 2 ranks x batch 2 x 1 step per epoch
    run = tmp_path / "run"
    command = ["bash", "test/train_full_8p.sh", f"--data_path={data}", "--class_number=0", "--height=32",
               "--width=32", "--alpha=0.5", "--batch=2", "--train_epochs=3", "--train_steps=0",
               "--checkpoint_every=1", f"--ckpt_path={run}"]
    env = dict(python_env, RANK_SIZE="2")
    _kill_after_checkpoint(command, env, run, step=1)
    result = processes.run(command, cwd=MODEL_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Both workers resume from the run folder's checkpoint and train on to the last step.
    steps, text = _segment_steps(run, 2)
    start = _resumed_step(text)
    assert start >= 1 and [step for step, _ in steps] == list(range(start + 1, 4))
    assert _resumed_step(_segment_steps(run, 2, device=1)[1]) == start
    case = _case_log(os.path.join(env["MZ_OUTPUT_DIR"], "0"), "MobileNetV3_for_TensorFlow_bs2_2p_acc")
    assert set(CASE_KEYS) <= set(case) and case["RankSize"] == "2" and "TrainAccuracy" in case
    assert (case["RunSteps"], case["RunSegments"]) == ("1-3", "2")
    # The other worker's scratch checkpoints (checkpoints/.worker-1) are gone after a clean finish.
    assert sorted(path.name for path in (run / "checkpoints").iterdir() if path.name.startswith(".")) == []
    assert (run / "config.json").is_file()


def test_paper_recipe_sets_every_flag_not_given(capsys):
    # Its training run (the saved models hold the averaged weights) is in
    # test_restore_failure_keeps_config_and_resume_false_starts_over.
    from runtime import flags
    args = flags.parse_args(["--recipe=paper", "--batch_size=32", "--optimizer=adam"])
    assert (args.optimizer, args.lr_schedule, args.lr_decay_epochs, args.lr_decay_rate) == ("adam", "step", 3, 0.99)
    assert (args.learning_rate, args.weight_decay, args.ema_momentum) == (0.1 * 32 / 4096, 1e-5, 0.9999)
    assert "[recipe] paper: --lr_schedule=step" in capsys.readouterr().out
    # The line names the values used, also those given (the learning rate is then not scaled).
    flags.parse_args(["--recipe=paper", "--batch_size=32", "--learning_rate=0.001", "--dropout=0.2"])
    assert capsys.readouterr().out.strip() == (
        "[recipe] paper: --optimizer=rmsprop --lr_schedule=step --lr_decay_epochs=3 --lr_decay_rate=0.99 "
        "--warmup_epochs=0 --weight_decay=1e-05 --weight_decay_mode=l2 --ema_momentum=0.9999 --bn_momentum=0.99 "
        "--color_distortion=inception; "
        "as given: --dropout=0.2 --learning_rate=0.001")
