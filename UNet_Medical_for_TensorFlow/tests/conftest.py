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
"""Shared fixtures: the model directory and the repository root on sys.path, one synthetic dataset."""

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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    """The markers of the tests --quick leaves out: ``subprocess`` and ``slow`` (common/tests/processes.py)."""
    from common.tests import processes
    processes.register_markers(config)


# Tiny but real: 64x64 slices, 10 of them, learnable membranes.
SYNTHETIC_SLICES = 10
SYNTHETIC_SIZE = 64


@pytest.fixture(scope="session")
def isbi_dir(tmp_path_factory):
    """A folder with train-volume.tif, train-labels.tif, test-volume.tif (synthetic)."""
    from data_loading import synthetic
    path = tmp_path_factory.mktemp("isbi")
    synthetic.write_isbi_stacks(str(path), slices=SYNTHETIC_SLICES, size=SYNTHETIC_SIZE, seed=0)
    return str(path)
