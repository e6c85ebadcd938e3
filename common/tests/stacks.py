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
"""For tests of every directory: the other stack's Python and the stand-in Ascend adapter.

run_tests.sh runs the suites on the default stack (``.venv``) and then on the
TF 2.6.5 stack (``.venv-tf26``); a cross-stack test runs one side in a
subprocess of the other venv, so by the second pass both venvs exist.
"""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENVS = (".venv", ".venv-tf26")
# Put this folder first on PYTHONPATH (or sys.path) and npu_utils takes the NPU code path.
NPU_STAND_IN = os.path.join(REPO_ROOT, "common", "tests", "npu_stand_in")


def this_venv():
    """The name of the repository venv this test runs in, or None."""
    prefix = os.path.realpath(sys.prefix)
    return next((v for v in VENVS if os.path.realpath(os.path.join(REPO_ROOT, v)) == prefix), None)


def other_stack_python():
    """The other stack venv's python; the test is skipped when that venv does not exist yet
    (on the first pass of a fresh clone: the second pass runs it)."""
    here = this_venv()
    if here is None:
        pytest.skip("not run from one of the repository's venvs")
    other = VENVS[1 - VENVS.index(here)]
    python = os.path.join(REPO_ROOT, other, "bin", "python")
    if not os.path.isfile(python):
        pytest.skip(f"{other} does not exist yet: run_tests.sh runs this on its second stack")
    return python
