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
"""The ModelZoo scripts end to end on the tiny synthetic stack."""

import json
import os
import re
import statistics
import shutil
import subprocess
import time

import pytest

from common.launcher import parse_step_line
from common.tests import processes
from common.tests.summaries import images_over_time
from conftest import MODEL_DIR

# Every test here runs a script.
pytestmark = pytest.mark.subprocess

SMALL = ["--base_filters=4", "--tile_size=220", "--batch_size=2", "--learning_rate=0.001"]


@pytest.fixture(autouse=True)
def output_in_tmp_path(tmp_path, monkeypatch):
    """The scripts' output/<device>/ folders go to a temporary folder (common/train_script.sh), not test/output/."""
    monkeypatch.setenv("MZ_OUTPUT_DIR", str(tmp_path / "output"))


def run_script(name, *argv, cwd=MODEL_DIR, env=None):
    return processes.run(["bash", os.path.join(MODEL_DIR, "test", name), *argv], capture_output=True,
                         text=True, cwd=cwd, timeout=300, env=env)


def summary(name):
    path = os.path.join(os.environ["MZ_OUTPUT_DIR"], "0", name)
    with open(path, encoding="utf-8") as handle:
        return dict(line.strip().split(" = ", 1) for line in handle if " = " in line)


def accuracy_summary(case_name, log_every):
    """The summary of an accuracy run (train_full_*.sh), after checking that it holds every key.

    ActualFPS must be the images over the seconds of the TRAIN lines after the
    first one (the first interval holds the graph tracing and compilation).
    """
    values = summary(f"{case_name}.log")
    for key in ("Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
                "TrainAccuracy", "ActualLoss", "E2ETrainingTime", "dice", "dice_soft", "iou", "pixel_error"):
        assert key in values, key
    assert values["CaseName"] == case_name
    assert 0 <= float(values["TrainAccuracy"]) <= 1 and float(values["ActualFPS"]) > 0
    with open(os.path.join(os.environ["MZ_OUTPUT_DIR"], "0", "train_0.log"), encoding="utf-8") as log:
        text = log.read()
    steps = [step for step in map(parse_step_line, text.splitlines()) if step]
    assert steps[0].step == log_every and len(steps) > 1
    fps, _ = images_over_time(text, int(values["BatchSize"]) * int(values["RankSize"]), log_every)
    assert float(values["ActualFPS"]) == pytest.approx(fps, abs=0.006)
    return values


def test_nvidia_recipe_runs_five_folds_and_prints_the_summary(isbi_dir, tmp_path):
    """NVIDIA's 5-fold recipe end to end with a tiny width (its train_full_1p.sh runs, its summary lines).

    Then the same command again, as after an interruption: every fold's
    --ckpt_path run has finished, so each is evaluated again, with the same figures.
    """
    argv = (f"--data_path={isbi_dir}", "--train_steps=4", "--log_every=2", "--base_filters=2", "--tile_size=188",
            "--batch_size=2", "--use_xla=False", f"--ckpt_path={tmp_path}")
    result = run_script("train_nvidia_5fold_1p.sh", *argv, cwd=os.path.join(MODEL_DIR, "test"))
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-2000:]
    assert result.stdout.count("Final Train Accuracy : ") == 5
    dices = [float(d) for d in re.findall(r"^Final Train Accuracy : (\S+)$", result.stdout, re.M)]
    summary_line = re.search(r"^5-fold eval_dice_score: (.*)$", result.stdout, re.M).group(1)
    assert summary_line == " ".join(f"{d:.4f}" for d in dices)
    mean_std = re.search(r"^5-fold eval_dice_score mean : (\S+)  population std : (\S+)  sample std : (\S+)$",
                         result.stdout, re.M)
    assert float(mean_std.group(1)) == pytest.approx(statistics.mean(dices), abs=1e-4)
    assert float(mean_std.group(2)) == pytest.approx(statistics.pstdev(dices), abs=1e-4)
    assert float(mean_std.group(3)) == pytest.approx(statistics.stdev(dices), abs=1e-4)
    # The recipe's settings reached main.py (the last fold's run).
    config = json.load(open(tmp_path / "fold4" / "config.json"))
    assert (config["input_mode"], config["augment_set"], config["augment"], config["learning_rate"],
            config["crossvalidation_idx"], config["fold_scheme"], config["precision_mode"]) == (
        "resize", "nvidia", True, 0.0001, 4, "nvidia", "must_keep_origin_dtype")  # NVIDIA's float32/TF32
    assert "6,400 steps on one device as NVIDIA's 1-GPU run" in result.stdout
    values = accuracy_summary("UNet_Medical_for_TensorFlow_bs2_1p_acc", log_every=2)
    assert values["RankSize"] == "1" and values["BatchSize"] == "2"
    assert float(values["TrainAccuracy"]) == pytest.approx(dices[-1], abs=1e-4)
    rerun = run_script("train_nvidia_5fold_1p.sh", *argv)
    assert rerun.returncode == 0, rerun.stdout[-1000:] + rerun.stderr[-2000:]
    assert rerun.stdout.count("had already finished in") == 5 and "Final Train Accuracy" not in rerun.stdout
    assert re.search(r"^5-fold eval_dice_score: (.*)$", rerun.stdout, re.M).group(1) == summary_line


def test_nvidia_recipe_takes_amp_for_mixed_precision():
    """--amp (NVIDIA's) switches the recipe to allow_mix_precision; without it the recipe stays float32."""
    for argv, precision in (((), "must_keep_origin_dtype"), (("--amp",), "allow_mix_precision")):
        result = run_script("train_nvidia_5fold_1p.sh", *argv, "--help")
        assert result.returncode == 0 and f"--precision_mode={precision} " in result.stdout


def saved_step(run_folder):
    """The step of the newest checkpoint the run folder's list names (written after all its files), or 0."""
    state = os.path.join(run_folder, "checkpoints", "checkpoint")
    text = open(state, encoding="utf-8").read() if os.path.exists(state) else ""
    found = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', text, re.M)
    return int(found.group(1)) if found else 0


def kill_after_a_checkpoint(script, argv, run_folder, env=None):
    """Start ``test/<script> argv`` in its own process group, SIGKILL the group once a checkpoint is
    saved (as a machine's failure would); returns that checkpoint's step."""
    with processes.started(["bash", os.path.join(MODEL_DIR, "test", script), *argv], timeout=300, cwd=MODEL_DIR,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) as process:
        deadline = time.time() + 180
        while time.time() < deadline and not saved_step(run_folder) and process.poll() is None:
            time.sleep(0.1)
    assert saved_step(run_folder), "no checkpoint before the kill"
    return saved_step(run_folder)


def segment_log(run_folder, segment, rank=0):
    path = os.path.join(run_folder, "logs", f"segment-{segment:03d}", f"train_{rank}.log")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return text, [step for step in map(parse_step_line, text.splitlines()) if step]


def test_a_killed_run_resumes_through_the_script(isbi_dir, tmp_path):
    """train_full_1p.sh --ckpt_path=DIR killed (its process group) after a checkpoint, then the same command
    again: both segments' logs kept, one loss file over steps 1..40, the summary names the whole run, and
    ActualFPS leaves out the resumed segment's first (graph-tracing) step."""
    run_folder = str(tmp_path / "run")
    argv = [f"--data_path={isbi_dir}", f"--ckpt_path={run_folder}", "--checkpoint_every=5", "--max_step=40",
            "--log_every=1", *SMALL]
    saved = kill_after_a_checkpoint("train_full_1p.sh", argv, run_folder)
    rerun = run_script("train_full_1p.sh", *argv)
    assert rerun.returncode == 0, rerun.stdout[-1000:] + rerun.stderr[-2000:]

    killed_text, killed = segment_log(run_folder, 1)
    resumed_text, resumed = segment_log(run_folder, 2)
    assert killed[0][0] == 1 and killed[-1][0] >= saved and "exported" not in killed_text
    assert f"[checkpoint] resumed from {run_folder}/checkpoints/ckpt-{saved}" in resumed_text
    assert [step[0] for step in resumed] == list(range(saved + 1, 41))
    by_step = {step[0]: step[1] for step in killed + resumed}  # a step trained again: the later line
    case = "UNet_Medical_for_TensorFlow_bs2_1p_acc"
    with open(os.path.join(os.environ["MZ_OUTPUT_DIR"], "0", f"train_{case}_loss.txt"), encoding="utf-8") as f:
        losses = [float(line) for line in f]
    assert losses == pytest.approx([by_step[step] for step in range(1, 41)], abs=1e-6)

    values = summary(f"{case}.log")
    assert (values["RunSteps"], values["RunSegments"], values["SegmentSteps"]) == ("1-40", "2", f"{saved + 1}-40")
    assert 0 <= float(values["TrainAccuracy"]) <= 1
    # The launcher's warm-up (--log_every steps) counts from where the segment started: step saved + 1,
    # whose interval holds the tracing, is left out; with it the figure would be lower.
    assert float(values["ActualFPS"]) == pytest.approx(images_over_time(resumed_text, 2, 1)[0], abs=0.006)
    assert float(values["ActualFPS"]) > images_over_time(resumed_text, 2, 0)[0] + 0.01


def test_train_full_8p_on_two_ranks_killed_and_resumed(isbi_dir, tmp_path):
    """Two workers (MultiWorkerMirroredStrategy on the CPU) killed after a checkpoint, the same command
    again: both resume from it and finish together; the non-chief's scratch checkpoints are gone."""
    run_folder = str(tmp_path / "run")
    argv = [f"--data_path={isbi_dir}", f"--ckpt_path={run_folder}", "--max_step=20", "--log_every=5",
            "--checkpoint_every=5", *SMALL]
    env = dict(os.environ, RANK_SIZE="2")
    saved = kill_after_a_checkpoint("train_full_8p.sh", argv, run_folder, env=env)
    result = run_script("train_full_8p.sh", *argv, env=env)
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-2000:]
    losses = []
    for rank in (0, 1):
        text, steps = segment_log(run_folder, 2, rank)
        assert f"[checkpoint] resumed from {run_folder}/checkpoints/ckpt-{saved}" in text, rank
        losses.append({step[0]: step[1] for step in steps})
        assert sorted(losses[-1]) == list(range(saved + 5, 21, 5)), rank
    # Each rank trains on its own shard, but the logged loss is the mean over
    # the ranks (common/npu_utils.make_train_step all-reduces it), so equal
    # losses show that both ranks ran every step together through the all-reduce.
    assert losses[0] == losses[1]
    assert saved_step(run_folder) == 20
    assert not [name for name in os.listdir(os.path.join(run_folder, "checkpoints")) if name.startswith(".worker")]
    values = summary("UNet_Medical_for_TensorFlow_bs2_2p_acc.log")
    assert (values["RankSize"], values["BatchSize"], values["RunSteps"], values["RunSegments"]) == (
        "2", "2", "5-20", "2")


def test_train_performance_1p(isbi_dir):
    result = run_script("train_performance_1p.sh", f"--data_path={isbi_dir}", "--max_step=14", *SMALL)
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-2000:]
    values = summary("UNet_Medical_for_TensorFlow_bs2_1p_perf.log")
    for key in ("Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
                "ActualLoss", "E2ETrainingTime", "latency_ms_mean", "latency_ms_p90",
                "latency_ms_p95", "latency_ms_p99"):  # the keys of every model's performance run
        assert key in values, key
    assert "TrainAccuracy" not in values
    latencies = [float(values[f"latency_ms_{name}"]) for name in ("p90", "p95", "p99")]
    assert float(values["ActualFPS"]) > 0 and float(values["latency_ms_mean"]) > 0
    assert latencies == sorted(latencies) and latencies[0] > 0
    # One speed: images over the time of steps 11-14 (after the 10 warm-up steps) = batch x 1000 / mean step time
    with open(os.path.join(os.environ["MZ_OUTPUT_DIR"], "0", "train_0.log"), encoding="utf-8") as log:
        fps, _ = images_over_time(log.read(), 2, 10)
    assert float(values["ActualFPS"]) == pytest.approx(fps, abs=0.006)
    assert float(values["TrainingTime"]) == pytest.approx(float(values["latency_ms_mean"]), abs=0.006)


@pytest.mark.parametrize("argv,expected", [
    ([], 'para "data_path" must be config'),
    (["--data_path=/tmp", "--max_stepz=3"], "unrecognized arguments: --max_stepz=3"),
    (["--data_path", "/tmp", "--batch_size", "abc"], "argument --batch_size: invalid int value: 'abc'"),
    (["--data_path=/tmp", "--tile_size=100"], "--tile_size"),
])
def test_script_argument_errors(argv, expected):
    """A bad flag or value is one line from the script, exit 2, before anything runs (main.py's own checks)."""
    result = run_script("train_full_1p.sh", *argv)
    assert result.returncode == 2 and expected in result.stderr and len(result.stderr.splitlines()) == 1


def test_failing_training_fails_the_script(tmp_path):
    (tmp_path / "images").mkdir()  # own-data layout without masks/: the training exits 2
    result = run_script("train_full_1p.sh", f"--data_path={tmp_path}", "--max_step=2", *SMALL)
    assert result.returncode != 0
    assert "Final Performance" not in result.stdout
    assert "masks: folder not found" in result.stderr


def test_help_lists_the_common_names_and_the_8p_scripts_exec_the_1p_ones():
    result = run_script("train_full_1p.sh", "--help")
    assert result.returncode == 0
    for name in ("--data_path", "--batch_size", "--train_epochs", "--train_steps", "--max_step", "--learning_rate",
                 "--ckpt_path", "--resume", "--crossvalidation_idx", "--augment_set", "--input_mode"):
        assert name in result.stdout, name
    assert "this script sets --mode=train_and_evaluate --crossvalidation_idx=0 --augment=True" in result.stdout
    assert result.stdout.startswith("usage: bash test/train_full_1p.sh")
    for name in ("train_full_8p.sh", "train_5fold_1p.sh"):  # each script's help is its own
        assert run_script(name, "--help").stdout.startswith(f"usage: bash test/{name}")
    for kind in ("full", "performance"):
        text = open(os.path.join(MODEL_DIR, "test", f"train_{kind}_8p.sh"), encoding="utf-8").read()
        assert 'RANK_SIZE="${RANK_SIZE:-8}"' in text and f"train_{kind}_1p.sh" in text


def test_loop_runs_ten_steps_on_this_stack(isbi_dir, tmp_path):
    """loop.sh (the seed's 10 steps; a tiny width here) runs main.py on this suite's stack: its export
    has this stack's file format."""
    from runtime.inference import EXPORT_FILE

    # The seed's arguments, the dataset relative to where loop.sh is started from.
    result = processes.run(["bash", os.path.join(MODEL_DIR, "loop.sh"), "--data_dir", os.path.basename(isbi_dir),
                             "--base_filters=2", "--tile_size=188"],
                           capture_output=True, text=True, timeout=300, cwd=os.path.dirname(isbi_dir),
                           env=dict(os.environ, model_dir=str(tmp_path / "loop")))
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-2000:]
    assert re.findall(r"TRAIN step=(\d+)", result.stdout) == [str(step) for step in range(1, 11)]
    assert os.path.isfile(tmp_path / "loop" / EXPORT_FILE)


def test_the_model_directory_alone_says_it_needs_common(tmp_path):
    """ModelZoo hands out one directory: without the repository's common/ beside it a script says so."""
    lone = tmp_path / "UNet_Medical_for_TensorFlow"
    shutil.copytree(MODEL_DIR, lone, ignore=shutil.ignore_patterns("tests", "output", "__pycache__"))
    result = processes.run(["bash", str(lone / "test" / "train_full_1p.sh"), "--help"], capture_output=True,
                           text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "common/" in result.stderr
