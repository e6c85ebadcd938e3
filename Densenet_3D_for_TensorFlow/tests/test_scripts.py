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
"""The test/*.sh scripts end to end on tiny synthetic data, and main.py as a
process: a bad case exits non-zero naming its file; a run with --ckpt_path
killed (SIGKILL) and rerun resumes from its last checkpoint, on one rank and on
two, and the run folder keeps every segment's logs.

The scripts run in a copy of the model directory (next to links to common/
and .venv) and write their output/<device>/ folders into a temporary folder
(MZ_OUTPUT_DIR), so that a test never replaces a user's test/output/.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from common.tests import processes
from common.tests.summaries import images_over_time
from conftest import MODEL_DIR, REPO_ROOT

# Every test here runs a script or main.py.
pytestmark = pytest.mark.subprocess

TINY_SCRIPT_FLAGS = ["--batch_size=2", "--centres=4", "--patch_size=30", "--width_multiplier=0.1",
                     "--block_size=48"]
LOG_KEYS = ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
            "ActualLoss", "E2ETrainingTime"]


@pytest.fixture(scope="module")
def script_repo(tmp_path_factory):
    """A repository copy: this model's code and scripts, common/ and .venv linked."""
    root = tmp_path_factory.mktemp("repo")
    os.symlink(os.path.join(REPO_ROOT, "common"), root / "common")
    if os.path.isdir(os.path.join(REPO_ROOT, ".venv")):
        os.symlink(os.path.join(REPO_ROOT, ".venv"), root / ".venv")
    shutil.copytree(MODEL_DIR, root / os.path.basename(MODEL_DIR),
                    ignore=shutil.ignore_patterns("tests", "output", "results", "__pycache__", "*.log"))
    return root / os.path.basename(MODEL_DIR)


@pytest.fixture(scope="module", autouse=True)
def script_output(tmp_path_factory):
    """The scripts' output root (MZ_OUTPUT_DIR, read by common/train_script.sh): a temporary folder."""
    output = tmp_path_factory.mktemp("output")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MZ_OUTPUT_DIR", str(output))
        yield output


def _env(rank_size=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("RANK_SIZE", None)
    if rank_size:
        env["RANK_SIZE"] = rank_size
    return env


def _run(command, cwd, timeout=600, rank_size=None):
    return processes.run(command, cwd=cwd, env=_env(rank_size), capture_output=True, text=True, timeout=timeout)


def _latest_step(run):
    """The step of the newest checkpoint in run folder ``run``, or 0. The manager's state file names
    a checkpoint only after all its files are written."""
    state = run / "checkpoints" / "checkpoint"
    found = state.exists() and re.match(r'model_checkpoint_path: "ckpt-(\d+)"', state.read_text())
    return int(found.group(1)) if found else 0


def _kill_after_checkpoint(command, cwd, run, rank_size=None):
    """Start ``command``, SIGKILL it once ``run`` holds a checkpoint; returns the newest checkpoint's step.

    The command runs in its own process group, so SIGKILL reaches the script, the
    launcher and every main.py at once, as a crash would.
    """
    with processes.started(command, timeout=600, cwd=cwd, env=_env(rank_size), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) as process:
        deadline = time.time() + 300
        while not _latest_step(run) and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    return _latest_step(run)


def _train_steps(log_text):
    """``[(step, images_per_sec), ...]`` of a log's TRAIN lines."""
    return [(int(step), float(rate)) for step, rate in
            re.findall(r"TRAIN step=(\d+) loss=\S+ images_per_sec=(\S+)", log_text)]


def _summary(path):
    with open(path, encoding="utf-8") as handle:
        return dict(line.rstrip("\n").split(" = ", 1) for line in handle if " = " in line)


def test_train_performance_1p_end_to_end_with_n4(script_repo, script_output, synthetic_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)
    result = _run(["bash", "train_performance_1p.sh", f"--data_path={data}", "--max_steps=4",
                   "--n4=True", *TINY_SCRIPT_FLAGS], cwd=script_repo / "test")
    assert result.returncode == 0, result.stdout + result.stderr
    output = script_output / "0"
    summary = _summary(output / "Densenet_3D_for_TensorFlow_bs2_1p_perf.log")
    latencies = ["latency_ms_mean", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99"]
    assert set(summary) == set(LOG_KEYS + latencies)  # the keys of every model's performance run
    log = (output / "train_0.log").read_text()
    # One speed: patches over the time of the timed steps (all 4 are warm-up: steps 2-4, as the launcher)
    assert float(summary["ActualFPS"]) == pytest.approx(images_over_time(log, 2, 5)[0], abs=0.006)
    metrics = dict(re.findall(r"METRIC (\w+)=([\d.e+-]+)", log))  # main.py's own figures stay in the log
    assert float(metrics["voxels_per_sec"]) == pytest.approx(float(metrics["patches_per_sec"]) * 64, rel=1e-3)
    assert len(re.findall(r"TRAIN step=", log)) == 4  # a line every step
    corrected = sorted(f for _, _, files in os.walk(data) for f in files if f.endswith("_corrected.nii.gz"))
    assert len(corrected) == 4 * 4  # the 4 training cases' 4 modalities
    assert not (output / "ckpt" / "checkpoints").exists()  # --benchmark saves nothing


def test_train_full_8p_on_two_ranks_killed_and_rerun_resumes(script_repo, script_output, synthetic_root, tmp_path):
    # 4 training cases shared out, 2 x (4 + 4) patches per rank and epoch in batches of 2: 8 steps per epoch.
    run = tmp_path / "run"
    command = ["bash", "test/train_full_8p.sh", f"--data_path={synthetic_root}", f"--ckpt_path={run}",
               "--train_steps=6", "--checkpoint_every=2", "--n4=False", *TINY_SCRIPT_FLAGS]
    resumed = _kill_after_checkpoint(command, script_repo, run, rank_size="2")
    assert resumed >= 2
    result = _run(command, cwd=script_repo, rank_size="2")
    assert result.returncode == 0, result.stdout + result.stderr
    output = script_output
    summary = _summary(output / "0" / "Densenet_3D_for_TensorFlow_bs2_2p_acc.log")
    assert set(LOG_KEYS + ["TrainAccuracy", "tc_dice", "et_dice"]) <= set(summary)
    assert summary["RankSize"] == "2" and summary["RunSegments"] == "2" and summary["RunSteps"] == "1-6"
    logs = [(output / str(rank) / f"train_{rank}.log").read_text() for rank in (0, 1)]
    for log in logs:  # the 4 training cases are shared out, a global batch of 2 x 2 patches
        assert "2 cases on this rank" in log and "batch 2 x 2 rank(s)" in log, log
        # Every rank restores the run folder's newest checkpoint and goes on from its step.
        assert f"[checkpoint] resumed from {run}/checkpoints/ckpt-{resumed}" in log
        steps = [step for step, _ in _train_steps(log)]
        assert steps[0] == resumed + 1 and steps[-1] == 6, steps
    # Rank 0 tests; every rank saved (the others into scratch folders, gone after a clean finish).
    assert (run / "predictions" / "metrics.csv").exists() and "[test]" not in logs[1]
    assert (run / "checkpoints" / "ckpt-6.index").exists()
    assert not list((run / "checkpoints").glob(".worker-*"))


def test_scripts_reject_missing_data_path_and_unknown_flags(script_repo):
    result = _run(["bash", "test/train_full_1p.sh"], cwd=script_repo)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "-r/--data_path" in result.stderr
    result = _run(["bash", "test/train_full_1p.sh", "--data_path", ".", "--epochz=3"], cwd=script_repo)
    assert result.returncode == 2 and "unrecognized arguments: --epochz=3" in result.stderr
    for script in ("train_full_1p.sh", "train_performance_1p.sh", "train_performance_8p.sh"):
        result = _run(["bash", f"test/{script}", "--help"], cwd=script_repo)
        assert result.returncode == 0 and "--width_multiplier" in result.stdout and "--precision_mode" in result.stdout
        for common_name in ("--data_path", "--batch_size", "--train_epochs", "--train_steps", "--max_steps",
                            "--learning_rate", "--ckpt_path", "--resume"):
            assert common_name in result.stdout, (script, common_name)


def test_bad_case_stops_main_with_its_file_named(synthetic_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)
    os.remove(data / "Synth_002" / "Synth_002_t2.nii.gz")
    result = _run([sys.executable, "main.py", "-r", str(data), "--model_dir", str(tmp_path / "run"), "-nc", "False"],
                  cwd=MODEL_DIR)
    assert result.returncode == 2
    assert "bad case Synth_002:" in result.stdout and "Synth_002_t2.nii.gz: missing" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 of ")


def test_sigkilled_script_rerun_resumes_and_its_run_folder_holds_the_whole_run(script_repo, script_output,
                                                                               synthetic_root):
    # 4 training cases x 2 centres / batch 2: 4 steps per epoch; a checkpoint every 2 steps, the last 2 kept.
    # The run folder where a ModelZoo user puts it, inside output/0, which every run recreates: kept.
    run = script_output / "0" / "ckpt"
    shutil.rmtree(run, ignore_errors=True)  # an earlier test's run
    command = ["bash", "test/train_full_1p.sh", f"--data_path={synthetic_root}", f"--ckpt_path={run}",
               "--train_steps=12", "--checkpoint_every=2", "--keep_checkpoints=2", "--log_every=1", "--n4=False",
               "--centres=1", "--inference=window", "--skip_bad_cases=True",
               *[flag for flag in TINY_SCRIPT_FLAGS if not flag.startswith("--centres")]]
    resumed = _kill_after_checkpoint(command, script_repo, run)
    assert resumed >= 2
    result = _run(command, cwd=script_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    output = script_output / "0"
    log = (output / "train_0.log").read_text()
    assert "--inference=window --skip_bad_cases=True" in log.splitlines()[0]
    assert f"from {run}/train.txt and {run}/test.txt" in log  # the first run's split, reused
    assert f"[flags] from {run}/config.json: --model_name=dense24 --width_multiplier=0.1" in log
    assert f"[checkpoint] resumed from {run}/checkpoints/ckpt-{resumed}" in log
    assert "window inference" in log and "METRIC wt_dice=" in log
    assert "Final Train Accuracy" in result.stdout and "Final Performance images/sec" in result.stdout
    # -nc False really is off: nothing corrected was written or read.
    assert "N4 bias-field correction off" in log
    assert not [f for _, _, files in os.walk(synthetic_root) for f in files if "corrected" in f]
    predictions = run / "predictions"
    assert (predictions / "metrics.csv").exists() and list(predictions.glob("*.nii.gz"))
    assert list(predictions.glob("*.png"))
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == ["ckpt-10.index", "ckpt-12.index"]

    # Each segment's log in the run folder: the killed one from step 1, the rerun from the checkpoint on.
    segments = [_train_steps((run / "logs" / f"segment-00{n}" / "train_0.log").read_text()) for n in (1, 2)]
    assert segments[0][0][0] == 1 and segments[0][-1][0] >= resumed
    assert [step for step, _ in segments[1]] == list(range(resumed + 1, 13))
    # The loss file and the summary speak for the whole run (--log_every=1: a loss per step).
    assert len((output / "train_Densenet_3D_for_TensorFlow_bs2_1p_acc_loss.txt").read_text().split()) == 12
    summary = _summary(output / "Densenet_3D_for_TensorFlow_bs2_1p_acc.log")
    assert set(LOG_KEYS + ["TrainAccuracy", "tc_dice", "et_dice"]) <= set(summary)
    assert "patches_per_sec" not in summary  # one speed per summary: ActualFPS
    assert summary["CaseName"] == "Densenet_3D_for_TensorFlow_bs2_1p_acc" and summary["RankSize"] == "1"
    assert 0.0 <= float(summary["TrainAccuracy"]) <= 1.0
    assert (summary["RunSteps"], summary["RunSegments"], summary["SegmentSteps"]) == ("1-12", "2", f"{resumed + 1}-12")
    # ActualFPS: the patches over the time of the rerun's steps after its first, graph-tracing one (the
    # warm-up of --log_every steps).
    rerun_log = (run / "logs" / "segment-002" / "train_0.log").read_text()
    assert float(summary["ActualFPS"]) == pytest.approx(images_over_time(rerun_log, 2, 1)[0], abs=0.006)
    assert float(summary["ActualFPS"]) != pytest.approx(images_over_time(rerun_log, 2, 0)[0], abs=0.006)


def test_n4_cache_dir_inside_output_is_refused(script_repo, script_output, synthetic_root):
    result = _run(["bash", "test/train_full_1p.sh", f"--data_path={synthetic_root}",
                   f"--n4_cache_dir={script_output}/n4"], cwd=script_repo)
    assert result.returncode == 2 and "every run recreates" in result.stderr
