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
"""Shared fixtures: the model directory and the repository root on sys.path,
and one small synthetic BraTS-format dataset for the whole session."""

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


# Runs SCRIPT as `python3 SCRIPT ARGS` would (python3 -c PROBE SCRIPT ARGS) and prints whether TensorFlow
# was loaded and the exit status, as its last line.
PROBE = """import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
    code = 0
except SystemExit as done:
    code = done.code
print("tensorflow" in sys.modules, code)
"""


def clean_env():
    """This process's environment without PYTHONPATH: a script finds common/ by itself, as a user's does."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


# Small enough for fast tests, big enough for a 30^3 training patch and a brain with a tumour.
SYNTHETIC_SHAPE = (40, 40, 36)
SYNTHETIC_CASES = 5


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Five synthetic BraTS-format cases (int16 modalities, uint8 labels), written once per session.

    Tests copy cases they modify; they never change these files.
    """
    from data_loading import synthetic

    root = tmp_path_factory.mktemp("brats")
    synthetic.write_dataset(str(root), SYNTHETIC_CASES, SYNTHETIC_SHAPE, seed=7)
    return str(root)


def write_reoriented_case(source_folder, dest_folder, orientation, scale=(1.0, 1.0, 1.0)):
    """Copy a case folder with every file's voxels flipped and permuted by the nibabel ``orientation``
    ((3, 2) rows of (new axis, flip) per axis) and the affine changed to match, so that each voxel keeps its
    place in the world; ``scale`` first stretches the source's voxels (mm along its axes). Returns the copy's
    folder."""
    import nibabel as nib
    import numpy as np

    os.makedirs(dest_folder)
    for name in sorted(os.listdir(source_folder)):
        image = nib.load(os.path.join(source_folder, name))
        data = np.asanyarray(image.dataobj)
        affine = image.affine @ np.diag(list(scale) + [1.0])
        moved = nib.orientations.apply_orientation(data, orientation)
        new_affine = affine @ nib.orientations.inv_ornt_aff(orientation, data.shape)
        nib.save(nib.Nifti1Image(np.ascontiguousarray(moved), new_affine), os.path.join(dest_folder, name))
    return dest_folder
