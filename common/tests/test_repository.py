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
"""The repository-wide rules: the ModelZoo gate's checks, every model directory's
files, and model directories importing only common.npu_utils and never each other."""

import ast
import glob
import os
import re
import subprocess

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO_ROOT, "*_for_TensorFlow")))
LICENCE_LINE = "# Licensed under the Apache License, Version 2.0"
MODEL_FILES = ("main.py", "README.md", "LICENSE", "requirements.txt", "modelzoo_level.txt", "test/env.sh",
               "test/train_full_1p.sh", "test/train_performance_1p.sh", "test/train_full_8p.sh",
               "test/train_performance_8p.sh")


def tracked_files():
    """The files git tracks plus the untracked ones it does not ignore (what a commit would hold)."""
    result = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    return [f for f in result.stdout.splitlines() if os.path.isfile(os.path.join(REPO_ROOT, f))]


def test_three_model_directories():
    assert MODELS == ["Densenet_3D_for_TensorFlow", "MobileNetV3_for_TensorFlow", "UNet_Medical_for_TensorFlow"]


@pytest.mark.parametrize("model", MODELS)
def test_each_model_directory_has_the_modelzoo_files(model):
    missing = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(REPO_ROOT, model, f))]
    assert not missing


def test_every_python_file_starts_with_the_licence_header():
    missing = [f for f in tracked_files() if f.endswith(".py")
               and LICENCE_LINE not in open(os.path.join(REPO_ROOT, f), encoding="utf-8").read(1000)]
    assert not missing


def test_no_large_files_logs_or_checkpoints():
    files = tracked_files()
    assert not [f for f in files if os.path.getsize(os.path.join(REPO_ROOT, f)) > 2 * 1024 * 1024]
    banned = re.compile(r"(\.log$|loss.*\.txt$|\.pb$|\.ckpt|ckpt-\d|\.index$|\.data-\d+-of-\d+$|\.h5$|\.keras$)")
    assert not [f for f in files if banned.search(os.path.basename(f))]


def test_train_scripts_leave_the_environment_to_env_sh():
    export = re.compile(r"^\s*export\s+(LD_LIBRARY_PATH|PATH|ASCEND_OPP_PATH|install_path)=", re.M)
    offending = [f for f in tracked_files() if re.search(r"/test/train[^/]*\.sh$", f)
                 and export.search(open(os.path.join(REPO_ROOT, f), encoding="utf-8").read())]
    assert not offending


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "common":
            yield from (f"common.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("model", MODELS)
def test_model_code_imports_only_npu_utils_from_common_and_no_other_model(model):
    others = [m for m in MODELS if m != model]
    wrong = []
    for path in glob.glob(os.path.join(REPO_ROOT, model, "**", "*.py"), recursive=True):
        if os.sep + "tests" + os.sep in path:  # tests may read the launcher's summary
            continue
        for name in _imports(path):
            if (name.startswith("common") and name != "common.npu_utils") or any(o in name for o in others):
                wrong.append(f"{os.path.relpath(path, REPO_ROOT)}: {name}")
    assert not wrong


def _long_functions(path, limit):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            # Flag tables (argparse parsers) are data laid out one flag a line.
            if length > limit and not re.search(r"parser|flags", node.name):
                yield f"{os.path.relpath(path, REPO_ROOT)}:{node.lineno} {node.name} ({length} lines)"


def test_no_function_over_60_lines_outside_flag_tables():
    paths = [os.path.join(REPO_ROOT, f) for f in tracked_files()
             if f.endswith(".py") and "/tests/" not in f and not f.startswith("tests/")]
    assert not [hit for path in paths for hit in _long_functions(path, 60)]


def test_main_py_files_are_tables_of_contents():
    lengths = {m: len(open(os.path.join(REPO_ROOT, m, "main.py"), encoding="utf-8").read().splitlines())
               for m in MODELS}
    assert all(length <= 65 for length in lengths.values()), lengths


@pytest.mark.parametrize("model", MODELS)
def test_model_code_never_tests_a_version_and_takes_keras_from_npu_utils(model):
    """Both stacks run the same files: what differs between TF 2.6.5 / Keras 2.6 and TF 2.21 / Keras 3
    lives in common/stack.py, and the stack's Keras comes from ``from common.npu_utils import keras``."""
    version_test = re.compile(r"__version__|\bKERAS3\b|\btf\.version\b|\bversion_info\b|\bVERSION\b")
    wrong = []
    for path in glob.glob(os.path.join(REPO_ROOT, model, "**", "*.py"), recursive=True):
        source = open(path, encoding="utf-8").read()
        names = set(_imports(path))
        if version_test.search(source) or "keras" in names or any(n.startswith("keras.") for n in names):
            wrong.append(os.path.relpath(path, REPO_ROOT))
    assert not wrong
