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
"""What the Ascend stack (TF 2.6.5) asks, tested on whichever stack runs the suite: run folders that
move between the stacks, and main.py training on the stand-in adapter."""

import os
import re
import sys

import pytest

from common.tests import processes
from common.tests.stacks import NPU_STAND_IN, other_stack_python
from conftest import MODEL_DIR

# Every test here runs main.py in a process of its own.
pytestmark = pytest.mark.subprocess

MAIN = os.path.join(MODEL_DIR, "main.py")
# A tenth of dense24's widths, 30^3 patches, one 40^3 block per synthetic case.
TINY = ["--width_multiplier", "0.1", "-ws", "30", "-hs", "30", "-cs", "30", "-ps", "4", "-bs", "2",
        "--tumour_centres", "2", "--background_centres", "2", "-nc", "False", "--block_size", "40",
        "--save_png", "False", "--log_every_steps", "1"]


def run_main(*argv, python=sys.executable, env=None):
    env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2")
    return processes.run([python, MAIN, *argv], capture_output=True, text=True, timeout=300, cwd=MODEL_DIR,
                         env=env)


def metrics_of(text):
    return {k: float(v) for k, v in re.findall(r"^METRIC (\w+)=(\S+)", text, re.M)}


def test_a_run_folder_moves_between_the_stacks(synthetic_root, tmp_path):
    """Trained on the other stack: test (the same Dice as there), predict and fine-tune (-lp) here;
    continuing it (-c True, whose optimizer state cannot cross) is refused in one line."""
    other = other_stack_python()
    run_dir = str(tmp_path / "run")
    trained = run_main("-r", synthetic_root, "--model_dir", run_dir, "--mode", "train_test", "--max_steps", "2",
                       *TINY, python=other)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", "ckpt-2.weights.npz"))

    tested = run_main("-r", synthetic_root, "--model_dir", run_dir, "--mode", "test", "--block_size", "40",
                      "-sp", str(tmp_path / "tested"), "--metrics", "brats2023")
    assert tested.returncode == 0, tested.stderr[-2000:]
    assert f"[checkpoint] weights of {run_dir}/checkpoints/ckpt-2 (written on TF " in tested.stdout
    there, here = metrics_of(trained.stdout), metrics_of(tested.stdout)
    dice = [name for name in there if name.endswith("_dice")]
    assert dice and all(here[name] == pytest.approx(there[name], abs=1e-4) for name in dice), (there, here)
    assert {"wt_lesion_dice", "et_lesion_hd95"} <= set(here) and "wt_lesion_dice" not in there

    predicted = run_main("-r", synthetic_root, "--model_dir", run_dir, "--mode", "predict", "--block_size", "40",
                         "-sp", str(tmp_path / "predicted"), "--save_png", "False")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert len(list((tmp_path / "predicted").glob("*.nii.gz"))) == len(os.listdir(synthetic_root))

    tuned = run_main("-r", synthetic_root, "--model_dir", str(tmp_path / "tuned"), "--mode", "train",
                     "--max_steps", "1", "-lp", run_dir, *TINY)
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert f"[train] initial weights from {run_dir}/checkpoints/ckpt-2" in tuned.stdout

    resumed = run_main("-r", synthetic_root, "--model_dir", run_dir, "--max_steps", "3", "-c", "True", *TINY)
    assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
    error = resumed.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: --resume: {run_dir}/checkpoints/ckpt-2 cannot be continued by this model: "
                            "written on TF "), error
    assert "optimizer state cannot be resumed here" in error


def test_training_on_the_stand_in_adapter(synthetic_root, tmp_path):
    """main.py on the NPU code path (the stand-in npu_device computes on the CPU) with the adapter's
    NpuLossScaleOptimizer (allow_mix_precision), then its test."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (NPU_STAND_IN, os.environ.get("PYTHONPATH")) if p))
    trained = run_main("-r", synthetic_root, "--model_dir", str(tmp_path / "run"), "--mode", "train_test",
                       "--max_steps", "2", "--precision_mode", "allow_mix_precision", "--autotune", *TINY, env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "[device] NPU 0, precision allow_mix_precision, rank 0 of 1" in trained.stdout
    assert re.findall(r"TRAIN step=(\d+)", trained.stdout) == ["1", "2"]
    assert 0 <= metrics_of(trained.stdout)["wt_dice"] <= 1
