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
process: a bad case exits non-zero naming its file; SIGKILL then -c resumes.

The scripts run in a copy of the model directory (next to links to common/
and .venv) so that a test never replaces a user's test/output/.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import MODEL_DIR, REPO_ROOT

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


def _run(command, cwd, timeout=600, rank_size=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("RANK_SIZE", None)
    if rank_size:
        env["RANK_SIZE"] = rank_size
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _summary(path):
    with open(path, encoding="utf-8") as handle:
        return dict(line.rstrip("\n").split(" = ", 1) for line in handle if " = " in line)


def test_train_full_1p_end_to_end(script_repo, synthetic_root):
    result = _run(["bash", "test/train_full_1p.sh", f"--data_path={synthetic_root}", "--max_steps=6",
                   "--n4=False", *TINY_SCRIPT_FLAGS], cwd=script_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Final Train Accuracy" in result.stdout and "Final Performance images/sec" in result.stdout
    output = script_repo / "test" / "output" / "0"
    summary = _summary(output / "Densenet_3D_for_TensorFlow_bs2_1p_acc.log")
    assert set(LOG_KEYS + ["TrainAccuracy", "tc_dice", "et_dice", "patches_per_sec"]) <= set(summary)
    assert summary["CaseName"] == "Densenet_3D_for_TensorFlow_bs2_1p_acc" and summary["RankSize"] == "1"
    assert 0.0 <= float(summary["TrainAccuracy"]) <= 1.0 and float(summary["ActualFPS"]) > 0
    log = (output / "train_0.log").read_text()
    assert "N4 bias-field correction off" in log and "METRIC wt_dice=" in log
    # -nc False really is off: nothing corrected was written or read.
    assert not [f for _, _, files in os.walk(synthetic_root) for f in files if "corrected" in f]
    predictions = output / "ckpt" / "predictions"
    assert (predictions / "metrics.csv").exists() and list(predictions.glob("*.nii.gz"))
    assert list(predictions.glob("*.png"))


def test_train_performance_1p_end_to_end_with_n4(script_repo, synthetic_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)
    result = _run(["bash", "train_performance_1p.sh", f"--data_path={data}", "--max_steps=4",
                   "--n4=True", *TINY_SCRIPT_FLAGS], cwd=script_repo / "test")
    assert result.returncode == 0, result.stdout + result.stderr
    output = script_repo / "test" / "output" / "0"
    summary = _summary(output / "Densenet_3D_for_TensorFlow_bs2_1p_perf.log")
    assert set(LOG_KEYS + ["patches_per_sec", "voxels_per_sec"]) <= set(summary)
    assert "TrainAccuracy" not in summary
    assert float(summary["voxels_per_sec"]) == pytest.approx(float(summary["patches_per_sec"]) * 64, rel=1e-3)
    corrected = sorted(f for _, _, files in os.walk(data) for f in files if f.endswith("_corrected.nii.gz"))
    assert len(corrected) == 4 * 4  # the 4 training cases' 4 modalities
    assert not (output / "ckpt" / "checkpoints").exists()  # --benchmark saves nothing


def test_train_full_8p_on_two_ranks(script_repo, synthetic_root):
    result = _run(["bash", "test/train_full_8p.sh", f"--data_path={synthetic_root}", "--max_steps=4",
                   "--n4=False", *TINY_SCRIPT_FLAGS], cwd=script_repo, rank_size="2")
    assert result.returncode == 0, result.stdout + result.stderr
    output = script_repo / "test" / "output"
    summary = _summary(output / "0" / "Densenet_3D_for_TensorFlow_bs2_2p_acc.log")
    assert set(LOG_KEYS + ["TrainAccuracy", "tc_dice", "et_dice"]) <= set(summary)
    assert summary["RankSize"] == "2"
    logs = [(output / str(rank) / f"train_{rank}.log").read_text() for rank in (0, 1)]
    for log in logs:  # the 4 training cases are shared out, a global batch of 2 x 2 patches
        assert "2 cases on this rank" in log and "batch 2 x 2 rank(s)" in log and "TRAIN step=4 " in log
    # Only rank 0 keeps checkpoints and tests.
    assert (output / "0" / "ckpt" / "predictions" / "metrics.csv").exists()
    assert not (output / "1" / "ckpt" / "predictions").exists()


def test_scripts_reject_missing_data_path_and_unknown_flags(script_repo):
    result = _run(["bash", "test/train_full_1p.sh"], cwd=script_repo)
    assert result.returncode == 1 and 'para "data_path" must be config' in result.stderr
    result = _run(["bash", "test/train_full_1p.sh", "--data_path=.", "--epochs=3"], cwd=script_repo)
    assert result.returncode == 1 and "unknown flag '--epochs=3'" in result.stderr
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


def test_sigkilled_script_with_ckpt_path_rerun_finishes_from_its_last_checkpoint(script_repo, synthetic_root,
                                                                                  tmp_path):
    # 4 training cases x 2 centres / batch 2: 4 steps per epoch, a checkpoint at each epoch's end.
    run = tmp_path / "run"
    command = ["bash", "test/train_full_1p.sh", f"--data_path={synthetic_root}", f"--ckpt_path={run}",
               "--train_steps=12", "--n4=False", "--centres=1", "--inference=window", "--skip_bad_cases=True",
               *[flag for flag in TINY_SCRIPT_FLAGS if not flag.startswith("--centres")]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("RANK_SIZE", None)
    # Its own process group, so SIGKILL reaches the script, the launcher and main.py, as a crash would.
    process = subprocess.Popen(command, cwd=script_repo, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    # The manager's state file names a checkpoint only after all its files are written.
    state = run / "checkpoints" / "checkpoint"

    def saved_step_4():
        return state.exists() and '"ckpt-4"' in state.read_text()

    deadline = time.time() + 300
    while not saved_step_4() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert saved_step_4()
    result = _run(command, cwd=script_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    log = (script_repo / "test" / "output" / "0" / "train_0.log").read_text()
    assert "--inference=window --skip_bad_cases=True" in log.splitlines()[0]
    assert f"from {run}/train.txt and {run}/test.txt" in log  # the first run's split, reused
    assert f"[flags] from {run}/config.json: --model_name=dense24 --width_multiplier=0.1" in log
    resumed = [line for line in log.splitlines() if "continuing from" in line]
    assert resumed, log
    step = int(resumed[0].rsplit("step ", 1)[1].rstrip(")"))
    assert step in (4, 8)
    steps = [int(line.split("step=")[1].split()[0]) for line in log.splitlines() if "TRAIN step=" in line]
    assert steps[0] == step + 1 and steps[-1] == 12
    assert "window inference" in log and "Final Train Accuracy" in result.stdout
    assert (run / "predictions" / "metrics.csv").exists()


def test_n4_cache_dir_inside_output_is_refused(script_repo, synthetic_root):
    result = _run(["bash", "test/train_full_1p.sh", f"--data_path={synthetic_root}",
                   "--n4_cache_dir=test/output/n4"], cwd=script_repo)
    assert result.returncode == 1 and "every run recreates" in result.stderr
