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
"""Puts the model directory and the repository root on sys.path; shared fixtures."""

import os
import sys

import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(MODEL_DIR)
for path in (MODEL_DIR, REPO_ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)
# The scripts the tests start run main.py with the python3 first on PATH when it is a venv's
# (common/train_script.sh): this test run's, so each stack's suite runs the scripts on that stack.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def pytest_configure(config):
    """The markers of the tests --quick leaves out: ``subprocess`` and ``slow`` (common/tests/processes.py)."""
    from common.tests import processes
    processes.register_markers(config)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """One synthetic dataset for the whole session: cls/ (4 classes) and seg/ (3 classes)."""
    from data_loading import synthetic
    root = tmp_path_factory.mktemp("synthetic")
    synthetic.write_classification(str(root / "cls"), classes=4, train_per_class=40,
                                   validation_per_class=10, size=64, seed=0)
    synthetic.write_segmentation(str(root / "seg"), classes=3, train_count=24, validation_count=8,
                                 size=64, seed=0)
    return root


@pytest.fixture(scope="session")
def python_env(tmp_path_factory):
    """Environment for subprocesses: quiet TensorFlow logs; the scripts' output/<device>/ folders in a
    temporary folder (common/train_script.sh's MZ_OUTPUT_DIR), never in the source tree's test/output/."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
                MZ_OUTPUT_DIR=str(tmp_path_factory.mktemp("script_output")))
