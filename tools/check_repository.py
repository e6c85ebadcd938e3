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
"""The house rules, checked over the files git would commit: run_tests.sh runs this before the tests.

    python3 tools/check_repository.py

The ModelZoo gate's checks (licence header, no large files, logs or
checkpoints, scripts leaving the environment to env.sh), one layout in every
model directory, model code importing each common module it uses by its own
name (those of :data:`MODEL_COMMON`) and no other model, public TensorFlow,
Keras and argparse APIs only (the few private members no public API replaces
are listed in :data:`PRIVATE_MEMBERS` with their reason), no version tests,
files of at most 500 lines, functions of at most 50 outside flag tables,
main.py a table of contents within 60, type hints on every public function
of common/ and of each model's model/, runtime/ and data_loading/, tests starting processes only through
common/tests/processes.py. Prints one line per breach and exits 1 when there
is one.
"""

import ast
import os
import re
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The common modules model code may import (the launcher and the script helpers are the scripts' side).
MODEL_COMMON = {"common.npu_utils", "common.cli", "common.errors", "common.cluster", "common.stack",
                "common.checkpoints"}
MODELS = ("Densenet_3D_for_TensorFlow", "MobileNetV3_for_TensorFlow", "UNet_Medical_for_TensorFlow")
LICENCE_LINE = "# Licensed under the Apache License, Version 2.0"
# Every model directory: the same folders, the same runtime/ modules for the same roles, these files.
MODEL_FOLDERS = {"configs", "data_loading", "model", "runtime", "test", "tests"}
RUNTIME_MODULES = {"__init__.py", "flags.py", "training.py", "evaluation.py", "inference.py", "metrics.py"}
MODEL_FILES = ("main.py", "benchmark.py", "README.md", "LICENSE", "requirements.txt", "modelzoo_level.txt",
               "test/env.sh", "test/model_flags.sh", "test/train_full_1p.sh", "test/train_performance_1p.sh",
               "test/train_full_8p.sh", "test/train_performance_8p.sh", "configs/rank_table_8p.json")
BANNED_FILES = re.compile(r"(\.log$|loss.*\.txt$|\.pb$|\.ckpt|ckpt-\d|\.index$|\.data-\d+-of-\d+$|\.h5$|\.keras$)")
ENV_EXPORT = re.compile(r"^\s*export\s+(LD_LIBRARY_PATH|PATH|ASCEND_OPP_PATH|install_path)=", re.M)
VERSION_TEST = re.compile(r"__version__|\bKERAS3\b|\btf\.version\b|\bversion_info\b|\bVERSION\b")
PRIVATE_MODULES = re.compile(r"\btensorflow\.core\b|\btensorflow\.python\b")
# Another library's private members (an underscored attribute no file here defines, or a super()._method
# call of an override), each with why no public API does it. Any other is a breach.
PRIVATE_MEMBERS = {
    "_create_all_weights": "Keras 2.6 optimizers create slot variables only on the first step otherwise; "
                           "a restore or a broadcast needs them before it (stack.build_optimizer)",
    "_create_slots": "Keras 2.6 RMSprop takes no initial value for its squared-gradient average; "
                     "TF1's starts at 1 (stack._rmsprop_from)",
    "_velocities": "the same for Keras 3 RMSprop, whose averages are created as zeros",
    "_resource_apply_dense": "Keras 2.6 has no decoupled weight decay; the per-variable update is the "
                             "only place it can go (stack._keras2_decoupled_class)",
    "_decayed_lr": "the learning rate of that step, as the Keras 2.6 update itself reads it",
    "_as_serialized_graph": "tests only: the one view of a tf.data pipeline's ops (no Python on the image path)",
    "_get_help_string": "argparse: a help formatter class is its documented way to show defaults, and this "
                        "its one method to override (ArgumentDefaultsHelpFormatter overrides it too)",
    "_exit": "os._exit is public Python API",
    "_fields": "namedtuple's public API",
}
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 50
MAX_MAIN_LINES = 60
# The public functions of every runtime/training.py, in this order (the top README has a line for each).
TRAINING_SKELETON = ("build", "restore_or_start", "train", "end_step", "finish")
# The --mode vocabulary (common/cli.MODES) and each model's words of it, with the spellings of its
# reference it still accepts (spelling -> the mode it runs; a spelling that runs itself is a reference's mode).
MODE_VOCABULARY = ("train", "evaluate", "train_and_evaluate", "predict", "export")
MODEL_MODES = {
    "Densenet_3D_for_TensorFlow": (MODE_VOCABULARY[:4], {"test": "evaluate", "train_test": "train_and_evaluate"}),
    "MobileNetV3_for_TensorFlow": (MODE_VOCABULARY, {}),
    "UNet_Medical_for_TensorFlow": (MODE_VOCABULARY[:4], {"train_and_predict": "train_and_predict"}),
}
SCRIPT_MODE = re.compile(r"--mode[= ](\w+)")
# A test starts a process through common/tests/processes.py: with a timeout, its process group killed.
RAW_PROCESS = re.compile(r"\bsubprocess\.(run|Popen|call|check_call|check_output)\(|\bos\.(system|popen)\(")
PROCESS_HELPER = "common/tests/processes.py"


def tracked_files():
    """The files git tracks plus the untracked ones it does not ignore (what a commit would hold)."""
    result = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    return [f for f in result.stdout.splitlines() if os.path.isfile(os.path.join(REPO_ROOT, f))]


def _read(path):
    with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def _imports(path):
    for node in ast.walk(ast.parse(_read(path), path)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "common":
            yield from (f"common.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def check_gate(files):
    """The ModelZoo gate: licence headers, file sizes, no logs or checkpoints, env.sh owns the environment."""
    yield from (f"{f}: no Apache-2.0 licence header" for f in files
                if f.endswith(".py") and LICENCE_LINE not in _read(f)[:1000])
    yield from (f"{f}: over 2 MB" for f in files if os.path.getsize(os.path.join(REPO_ROOT, f)) > 2 * 1024 * 1024)
    yield from (f"{f}: a log, loss file or checkpoint" for f in files if BANNED_FILES.search(os.path.basename(f)))
    yield from (f"{f}: sets the environment that test/env.sh owns" for f in files
                if re.search(r"/test/train[^/]*\.sh$", f) and ENV_EXPORT.search(_read(f)))


def check_layout(files):
    """The same rooms under the same names in every model directory."""
    found = sorted({f.split("/")[0] for f in files if f.endswith("_for_TensorFlow/README.md")})
    if found != list(MODELS):
        yield f"model directories: {found}, expected {list(MODELS)}"
    for model in MODELS:
        mine = [f[len(model) + 1:] for f in files if f.startswith(model + "/")]
        folders = {f.split("/")[0] for f in mine if "/" in f}
        if folders != MODEL_FOLDERS:
            yield f"{model}: folders {sorted(folders)}, expected {sorted(MODEL_FOLDERS)}"
        runtime = {f.split("/")[1] for f in mine if f.startswith("runtime/") and f.count("/") == 1}
        if runtime != RUNTIME_MODULES:
            yield f"{model}/runtime: {sorted(runtime)}, expected {sorted(RUNTIME_MODULES)}"
        yield from (f"{model}: no {name}" for name in MODEL_FILES if name not in mine)
        main_lines = len(_read(f"{model}/main.py").splitlines()) if "main.py" in mine else 0
        if main_lines > MAX_MAIN_LINES:
            yield f"{model}/main.py: {main_lines} lines; a table of contents stays within {MAX_MAIN_LINES}"


def check_python(files):
    """Imports between directories, public APIs, no version tests, short functions."""
    for path in (f for f in files if f.endswith(".py")):
        source, names = _read(path), set(_imports(path))
        model = path.split("/")[0] if path.split("/")[0] in MODELS else None
        if model and "/tests/" not in path:  # tests may read the launcher's summary
            yield from (f"{path}: imports {name}" for name in sorted(names)
                        if (name.startswith("common") and name not in MODEL_COMMON)
                        or any(other in name for other in MODELS if other != model))
        if model and (VERSION_TEST.search(source) or "keras" in names or any(n.startswith("keras.") for n in names)):
            yield f"{path}: tests a version or imports keras (take it from common.stack)"
        if PRIVATE_MODULES.search(source) and path != "tools/check_repository.py":
            yield f"{path}: imports a private module ({PRIVATE_MODULES.search(source).group(0)})"
        if source.count("\n") > MAX_FILE_LINES:
            yield f"{path}: {source.count(chr(10))} lines (at most {MAX_FILE_LINES})"
        if "/tests/" not in path:
            yield from _long_functions(path)
        elif path != PROCESS_HELPER and RAW_PROCESS.search(source):
            yield (f"{path}: starts a process with {RAW_PROCESS.search(source).group(0)}; a test starts one "
                   f"through {PROCESS_HELPER} (a timeout, its process group killed, the subprocess marker)")


def _annotated(path):
    """The public functions of ``path`` (module level, and methods of its public classes) without a hint on
    every parameter and on the return."""
    tree = ast.parse(_read(path), path)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")):
        functions += [node for node in cls.body if isinstance(node, ast.FunctionDef)]
    for node in (f for f in functions if not f.name.startswith("_") or f.name == "__init__"):
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        arguments += [a for a in (node.args.vararg, node.args.kwarg) if a]
        missing = [a.arg for a in arguments if a.annotation is None and a.arg not in ("self", "cls")]
        if missing or node.returns is None:
            yield f"{path}:{node.lineno} {node.name}: no type hint on {', '.join(missing) or 'its return'}"


def check_type_hints(files):
    """Type hints on every public function of common/ and of each model's model/, runtime/, data_loading/."""
    for path in (f for f in files if f.endswith(".py") and "/tests/" not in f):
        parts = path.split("/")
        if parts[0] == "common" or (parts[0] in MODELS and parts[1] in ("model", "runtime", "data_loading")):
            yield from _annotated(path)


def check_private_members(files):
    """Underscored attributes that no file here defines (so another library's), and ``super()._name``
    calls (an override reaching into its base's privates), unless listed in :data:`PRIVATE_MEMBERS`."""
    trees = {path: ast.parse(_read(path), path) for path in files if path.endswith(".py")}
    defined = set()
    for node in (n for tree in trees.values() for n in ast.walk(tree)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            defined.add(node.value)  # setattr(obj, "_name", ...) and friends
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and re.match(r"_[^_]", node.attr)):
                continue
            via_super = isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "super"
            if (via_super or node.attr not in defined) and node.attr not in PRIVATE_MEMBERS:
                yield f"{path}:{node.lineno} uses the private member {node.attr} (see PRIVATE_MEMBERS)"


def _long_functions(path):
    for node in ast.walk(ast.parse(_read(path), path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            # Flag tables (argparse parsers) are data laid out one flag a line.
            if length > MAX_FUNCTION_LINES and not re.search(r"parser|flags", node.name):
                yield f"{path}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})"


def check_skeleton(files):
    """The same public functions, in the same order, in every model's runtime/training.py."""
    for model in MODELS:
        path = f"{model}/runtime/training.py"
        if path not in files:
            continue
        public = tuple(node.name for node in ast.parse(_read(path), path).body
                       if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"))
        if public != TRAINING_SKELETON:
            yield f"{path}: public functions {list(public)}, expected the skeleton {list(TRAINING_SKELETON)}"


def _module_values(path):
    """The module-level ``NAME = value`` nodes of ``path``, by name."""
    return {target.id: node.value for node in ast.parse(_read(path), path).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def _modes_value(node, vocabulary):
    """The tuple a flags.py's ``MODES`` stands for: cli.MODES, a slice of it, or a literal tuple."""
    if isinstance(node, ast.Attribute) and node.attr == "MODES":
        return tuple(vocabulary)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "MODES":
        piece = node.slice
        bounds = [ast.literal_eval(b) if b is not None else None for b in (piece.lower, piece.upper)]
        return tuple(vocabulary)[bounds[0]:bounds[1]]
    return tuple(ast.literal_eval(node))


def check_modes(files):
    """One --mode vocabulary: common/cli.MODES, each model's words of it and reference spellings as
    pinned in :data:`MODEL_MODES`, given to cli.add_mode_flag, and only those in its test/*.sh."""
    vocabulary = ast.literal_eval(_module_values("common/cli.py")["MODES"])
    if tuple(vocabulary) != MODE_VOCABULARY:
        yield f"common/cli.py: MODES {vocabulary}, expected {MODE_VOCABULARY}"
    for model, (modes, spellings) in MODEL_MODES.items():
        path = f"{model}/runtime/flags.py"
        if path not in files:
            continue
        values = _module_values(path)
        found = _modes_value(values["MODES"], vocabulary) if "MODES" in values else ()
        found_spellings = ast.literal_eval(values["REFERENCE_MODES"]) if "REFERENCE_MODES" in values else {}
        if (found, found_spellings) != (modes, spellings):
            yield f"{path}: --mode {list(found)} and reference spellings {found_spellings}, expected {list(modes)} " \
                  f"and {spellings}"
        calls = [node for node in ast.walk(ast.parse(_read(path), path)) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and node.func.attr == "add_mode_flag"]
        given = {kw.arg: kw.value for call in calls for kw in call.keywords}
        if len(calls) != 1 or len(calls[0].args) < 2 or getattr(calls[0].args[1], "id", None) != "MODES" or \
                (spellings and getattr(given.get("reference_modes"), "id", None) != "REFERENCE_MODES"):
            yield f"{path}: --mode is not cli.add_mode_flag(parser, MODES[, reference_modes=REFERENCE_MODES])"
        accepted = set(modes) | set(spellings)
        for script in (f for f in files if f.startswith(f"{model}/test/") and f.endswith(".sh")):
            yield from (f"{script}: --mode={mode} is not a mode of {model}" for mode in
                        SCRIPT_MODE.findall(_read(script)) if mode not in accepted)


def main():
    files = tracked_files()
    problems = [p for check in (check_gate, check_layout, check_python, check_private_members, check_skeleton,
                                check_modes, check_type_hints)
                for p in check(files)]
    for problem in problems:
        print(f"[check_repository] {problem}")
    print(f"[check_repository] {len(problems)} breach(es) of the house rules" if problems
          else "[check_repository] the house rules hold")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
