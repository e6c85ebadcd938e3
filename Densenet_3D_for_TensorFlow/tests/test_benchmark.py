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
"""benchmark.py: --help without TensorFlow, and a small run of the inference and scores parts at a width
(--width_multiplier) with every line it prints, the block shape main.py's --block_size=auto takes and its traces."""

import sys

import pytest

from common.tests import processes
from conftest import MODEL_DIR, PROBE, clean_env

# Both run benchmark.py in a process of its own.
pytestmark = pytest.mark.subprocess


def test_help_loads_no_tensorflow():
    result = processes.run([sys.executable, "-c", PROBE, "benchmark.py", "--help"], cwd=MODEL_DIR, env=clean_env(),
                           capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines()[-1] == "False 0", result.stderr
    assert "--width_multiplier" in result.stdout and "--parts" in result.stdout


def test_inference_and_scores_at_a_width():
    result = processes.run([sys.executable, "benchmark.py", "--parts", "scores", "inference", "--width_multiplier",
                             "0.25", "--shape", "48", "48", "40", "--windows", "2", "--window_batch", "2",
                             "--pipeline_cases", "1"],
                           cwd=MODEL_DIR, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if not line.startswith("[device]")]
    assert [line.split(":")[0] for line in lines] == [
        "scores (48, 48, 40) --metrics=brats", "scores (48, 48, 40) --metrics=brats2023",
        "inference (48, 48, 40) float32 (dense24, width 0.25)"]
    assert "WT lesions TP/FP/FN" in lines[1] and lines[2].endswith("labels on the timed windows equal")
    # --block_size=auto (main.py's default): one block of the case's head box, traced once.
    assert "(blocks of 41x41x33 (auto) kept, 1 trace(s), peak memory " in lines[2]
