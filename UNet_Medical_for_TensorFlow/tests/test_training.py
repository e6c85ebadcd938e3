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
"""Training end to end on the tiny synthetic stack: it learns, resumes, refuses, starts over, stops on NaN."""

import glob
import os
import re
import shutil
import sys

import numpy as np
import pytest

from common import stack
from common.tests import processes
from conftest import MODEL_DIR

# Every test here runs main.py, benchmark.py or Python in a process of its own.
pytestmark = pytest.mark.subprocess

MAIN = os.path.join(MODEL_DIR, "main.py")
SMALL = ["--base_filters=4", "--tile_size=220", "--batch_size=4", "--learning_rate=0.001", "--seed=0"]


def run_main(*argv, timeout=240):
    return processes.run([sys.executable, MAIN, *argv], capture_output=True, text=True, timeout=timeout,
                         cwd=MODEL_DIR)


def metrics_of(text):
    return {k: float(v) for k, v in re.findall(r"^METRIC (\w+)=(\S+)", text, re.M)}


def test_short_training_learns(isbi_dir, tmp_path):
    """150 steps of a 4-filter UNet: validation Dice far above the untrained network's."""
    from data_loading import folds, readers, tiles
    from model import unet
    from runtime import inference, metrics

    data = readers.read_isbi(isbi_dir, need_test=False)
    _, validation = folds.fold_split(len(data.images), 1, seed=0)
    stack.set_random_seed(0)  # the untrained figure must not depend on the tests run before
    untrained = unet.build_unet(base_filters=4, tile_size=220)
    probability_fn = inference.make_probability_fn(untrained, False, batch_size=1)
    probabilities = [tiles.predict_tiled(probability_fn, tiles.normalize(data.images[i].astype(np.float32)), 220, 36)
                     for i in validation]
    before = metrics.segmentation_metrics(probabilities, [data.labels[i] for i in validation], 2)["dice"]

    result = run_main("--data_dir", isbi_dir, "--model_dir", str(tmp_path / "run"), "--crossvalidation_idx=1",
                      "--exec_mode=train_and_evaluate", "--max_steps=150", "--log_every=50", *SMALL)
    assert result.returncode == 0, result.stderr[-2000:]
    after = metrics_of(result.stdout)
    print(f"validation Dice untrained {before:.3f}, trained {after['dice']:.3f}")
    # A random network already scores some Dice on the majority class (0.64 seen): the gain is what counts.
    assert after["dice"] > 0.85 and after["dice"] > before + 0.3
    assert after["pixel_error"] < 0.1
    assert os.path.isfile(tmp_path / "run" / inference.EXPORT_FILE)

    # The export loads without this repository's code.
    exported = stack.keras.models.load_model(str(tmp_path / "run" / inference.EXPORT_FILE))
    assert exported.output_shape == (None, 36, 36, 2)

    # Predict reads only what it uses: a folder with test-volume.tif alone serves.
    test_only = tmp_path / "test_only"
    test_only.mkdir()
    shutil.copy(os.path.join(isbi_dir, "test-volume.tif"), test_only)
    predicted = run_main("--data_dir", str(test_only), "--model_dir", str(tmp_path / "run"), "--exec_mode=predict",
                         *SMALL)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    masks = readers.read_stack(str(tmp_path / "run" / "predictions" / "test-masks.tif"), "masks")
    assert masks.shape == (10, 64, 64) and set(np.unique(masks)) <= {0, 255}
    assert len(glob.glob(str(tmp_path / "run" / "predictions" / "overlay_*.png"))) == 3


def test_non_finite_loss_stops_with_checkpoint_intact(isbi_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    result = run_main("--data_dir", isbi_dir, "--model_dir", model_dir, "--max_steps=20", "--checkpoint_every=1",
                      *SMALL, "--learning_rate=1e30")
    assert result.returncode == 3
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "non-finite loss" in error_lines[0] and "without saving" in error_lines[0]
    step = int(re.search(r"at step (\d+)", error_lines[0]).group(1))
    assert os.path.isfile(os.path.join(model_dir, "checkpoints", f"ckpt-{step - 1}.index"))
    assert not glob.glob(os.path.join(model_dir, "checkpoints", f"ckpt-{step}.*"))


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = run_main("--data_dir", str(tmp_path), *SMALL)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/train-volume.tif: file not found (the training slices)")
    assert "Traceback" not in result.stderr


def test_transfer_learning_from_a_two_class_run_to_three_classes(isbi_dir, tmp_path):
    from PIL import Image

    from data_loading import synthetic

    source = str(tmp_path / "source")
    first = run_main("--data_dir", isbi_dir, "--model_dir", source, "--max_steps=2", "--log_every=1", *SMALL)
    assert first.returncode == 0, first.stderr[-2000:]
    own = tmp_path / "own"
    (own / "images").mkdir(parents=True)
    (own / "masks").mkdir()
    images, labels = synthetic.synthetic_stack(4, 48, seed=5)
    for index, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(own / "images" / f"{index}.png")
        three_classes = np.where(label > 0, 1 + (np.arange(48)[None] >= 24), 0).astype(np.uint8)
        Image.fromarray(three_classes).save(own / "masks" / f"{index}.png")
    target = str(tmp_path / "target")
    failed = run_main("--data_dir", str(own), "--n_classes=3", "--model_dir", target, "--max_steps=2",
                      "--pretrained_checkpoint", str(tmp_path / "nowhere"), *SMALL)
    assert failed.returncode == 2 and "--pretrained_checkpoint=" in failed.stderr
    assert not os.path.exists(target)  # a failed run leaves no empty folder (tensorboard/ comes at the first record)
    result = run_main("--data_dir", str(own), "--n_classes=3", "--model_dir", target, "--max_steps=2",
                      "--log_every=1", "--pretrained_checkpoint", source, *SMALL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "all layers but logits (different class count)" in result.stdout

    from runtime.inference import EXPORT_FILE
    before = stack.keras.models.load_model(os.path.join(source, EXPORT_FILE))
    after = stack.keras.models.load_model(os.path.join(target, EXPORT_FILE))
    assert after.output_shape[-1] == 3
    # Two Adam steps at 1e-3 move each weight by about 2e-3 at most.
    np.testing.assert_allclose(after.get_layer("down0_conv1").get_weights()[0],
                               before.get_layer("down0_conv1").get_weights()[0], atol=5e-3)


def test_inference_benchmark_prints_statistics(isbi_dir, tmp_path):
    result = run_main("--data_dir", isbi_dir, "--model_dir", str(tmp_path / "run"), "--exec_mode=predict",
                      "--benchmark", "--max_steps=4", "--warmup_steps=1", *SMALL)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = metrics_of(result.stdout)
    assert set(figures) == {"throughput", "latency_ms_mean", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99"}
    assert figures["throughput"] > 0 and figures["latency_ms_p99"] >= figures["latency_ms_p90"] > 0


def test_benchmark_script_prints_inference_and_training_figures():
    """benchmark.py (random tiles, no dataset) on a tiny width: every figure of both parts, memory included."""
    result = processes.run([sys.executable, os.path.join(MODEL_DIR, "benchmark.py"), "--base_filters=2",
                             "--tile_size=188", "--steps=2", "--warmup_steps=1"], capture_output=True, text=True,
                           cwd=MODEL_DIR, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = metrics_of(result.stdout)
    names = ("throughput", "latency_ms_mean", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99", "peak_rss_mb")
    assert set(figures) == {f"{part}_{name}" for part in ("inference", "train") for name in names}
    assert figures["train_peak_rss_mb"] >= figures["inference_peak_rss_mb"] > 0
    assert figures["train_throughput"] > 0 and figures["inference_throughput"] > 0


def test_evaluate_takes_the_network_and_fold_from_the_training_run(isbi_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    trained = run_main("--data_dir", isbi_dir, "--model_dir", model_dir, "--crossvalidation_idx=1",
                       "--max_steps=2", "--log_every=1", *SMALL)
    assert trained.returncode == 0, trained.stderr[-2000:]

    # No --base_filters, --tile_size, --seed or --crossvalidation_idx: all from its config.json.
    evaluated = run_main("--data_dir", isbi_dir, "--model_dir", model_dir, "--exec_mode=evaluate")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert (f"[flags] from {model_dir}/config.json: --base_filters=4 --n_classes=2 --seed=0 "
            "--crossvalidation_idx=1 --fold_scheme=partition --tile_size=220") in evaluated.stdout
    assert f"restored {model_dir}/checkpoints/ckpt-2" in evaluated.stdout and "dice" in metrics_of(evaluated.stdout)

    refused = run_main("--data_dir", isbi_dir, "--model_dir", model_dir, "--exec_mode=evaluate",
                       "--crossvalidation_idx=0")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(
        "error: --crossvalidation_idx=0 contradicts the training run in")


def test_fewer_slices_than_folds_is_one_line_and_exit_2(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for index in range(3):
        Image.fromarray(np.full((32, 32), 50 * index, np.uint8)).save(tmp_path / "images" / f"{index}.png")
        Image.fromarray(np.eye(32, dtype=np.uint8)).save(tmp_path / "masks" / f"{index}.png")
    result = run_main("--data_dir", str(tmp_path), "--model_dir", str(tmp_path / "run"),
                      "--exec_mode=train_and_evaluate", "--crossvalidation_idx=0", "--base_filters=4",
                      "--tile_size=188")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --crossvalidation_idx=0 needs at least 5 training slices/images (5 folds) but "
        f"--data_path={tmp_path} holds 3; leave --crossvalidation_idx out to train on all of them")
    assert not os.path.exists(tmp_path / "run" / "config.json")  # stopped before any work


def test_resuming_a_run_that_reached_max_steps_exports_it(isbi_dir, tmp_path):
    """Killed after its last checkpoint but before the export: resuming writes unet.keras (unet.h5 on TF 2.6)."""
    from runtime.inference import EXPORT_FILE

    model_dir = str(tmp_path / "run")
    common = ["--data_dir", isbi_dir, "--model_dir", model_dir, "--max_steps=2", "--log_every=1",
              "--base_filters=4", "--tile_size=188", "--batch_size=2"]
    first = run_main(*common)
    assert first.returncode == 0, first.stderr[-2000:]
    os.remove(os.path.join(model_dir, EXPORT_FILE))
    resumed = run_main(*common, "--resume_training")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "checkpoint step 2 already reaches --max_steps=2" in resumed.stdout
    assert "TRAIN step=" not in resumed.stdout
    assert f"exported {model_dir}/{EXPORT_FILE} at step 2" in resumed.stdout
    assert os.path.isfile(os.path.join(model_dir, EXPORT_FILE))


def test_epoch_cap_keep_checkpoints_resume_refusals_and_start_over(isbi_dir, tmp_path):
    """--train_epochs caps the steps and --keep_checkpoints=1 keeps one; a training without --resume over
    a checkpoint, a resume with another width, or from a truncated checkpoint fails in one line before
    config.json changes; --resume=False starts over."""
    model_dir = str(tmp_path / "run")
    checkpoints = os.path.join(model_dir, "checkpoints")
    common = ["--data_path", isbi_dir, "--model_dir", model_dir, "--log_every=1", "--crossvalidation_idx=0",
              "--base_filters=4", "--tile_size=188", "--batch_size=4"]
    first = run_main(*common, "--mode=train", "--train_epochs=1", "--max_steps=0", "--checkpoint_every=1",
                     "--keep_checkpoints=1")
    assert first.returncode == 0, first.stderr[-2000:]
    # 10 slices, fold 0 holds out 2: 8 training slices at batch 4 are 2 steps per epoch.
    assert "[train] --train_epochs=1: 2 steps per epoch (8 training slices); stops at step 2" in first.stdout
    assert re.findall(r"TRAIN step=(\d+)", first.stdout) == ["1", "2"]
    assert sorted(os.listdir(checkpoints)) == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index",
                                               "ckpt-2.weights.npz"]
    config_path = os.path.join(model_dir, "config.json")
    saved = open(config_path).read()

    unasked = run_main(*common, "--max_steps=3")
    assert unasked.returncode == 2 and "Traceback" not in unasked.stderr
    assert unasked.stderr.strip().splitlines()[-1] == (
        f"error: --model_dir={model_dir} already holds a checkpoint (ckpt-2): --resume=True continues that run, "
        "--resume=False starts over (deleting its checkpoints), or choose another --model_dir")

    refused = run_main(*common[:-3], "--base_filters=8", "--tile_size=188", "--batch_size=4", "--resume")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(
        f"error: --base_filters=8 contradicts the training run in {config_path}, which used --base_filters=4 (")
    assert open(config_path).read() == saved

    data_file = glob.glob(os.path.join(checkpoints, "ckpt-2.data-*"))[0]
    with open(data_file, "r+b") as handle:  # truncated: the restore fails, so config.json stays as it was
        handle.truncate(os.path.getsize(data_file) // 2)
    unreadable = run_main(*common, "--max_steps=3", "--resume")
    assert unreadable.returncode == 2 and "Traceback" not in unreadable.stderr
    assert unreadable.stderr.strip().splitlines()[-1].startswith(
        f"error: {checkpoints}/ckpt-2: the checkpoint is unreadable (")
    assert open(config_path).read() == saved

    over = run_main(*common, "--max_steps=1", "--resume=False")
    assert over.returncode == 0, over.stderr[-2000:]
    assert f"[checkpoint] --resume=False: deleted the checkpoints in {checkpoints}; starting over" in over.stdout
    assert re.findall(r"TRAIN step=(\d+)", over.stdout) == ["1"]
    assert os.path.isfile(os.path.join(checkpoints, "ckpt-1.index"))
    assert not glob.glob(os.path.join(checkpoints, "ckpt-2.*"))


def test_flags_load_no_tensorflow():
    """main.py's deferred imports are real: parsing the flags loads neither Keras nor TensorFlow."""
    code = ("import sys; sys.argv = ['main.py']; import main; "
            "main.flags.parse_args(['--mode=train_and_evaluate', '--crossvalidation_idx=0']); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    result = processes.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=MODEL_DIR, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_own_images_of_different_sizes_train_and_evaluate(tmp_path):
    """Own data whose images differ in size: evaluated one by one at native size, no np.stack crash."""
    from data_loading import readers, synthetic

    synthetic.write_own_data_folder(str(tmp_path), slices=5, size=32)  # every other image 24 wide
    assert {image.shape for image in readers.read_dataset(str(tmp_path)).images} == {(32, 32), (32, 24)}
    result = run_main("--data_path", str(tmp_path), "--model_dir", str(tmp_path / "run"), "--mode=train_and_evaluate",
                      "--crossvalidation_idx=0", "--max_steps=1", "--base_filters=2", "--tile_size=188",
                      "--batch_size=2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"eval_dice_score", "dice", "iou", "pixel_error", "v_rand", "v_info"} <= set(metrics_of(result.stdout))
    # Own data's probability maps: one single-page 32-bit float TIFF per test image.
    predicted = run_main("--data_path", str(tmp_path), "--model_dir", str(tmp_path / "run"), "--mode=predict",
                         "--save_probabilities")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    path = tmp_path / "run" / "predictions" / "000-probabilities.tif"
    assert "[predict] read 1 test image, wrote 1 mask and 1 probability map: " in predicted.stdout
    from PIL import Image
    with Image.open(path) as image:
        page = np.array(image)
        assert (image.n_frames, image.mode, page.dtype, page.shape) == (1, "F", np.float32, (32, 32))
    assert 0 <= page.min() and page.max() <= 1
