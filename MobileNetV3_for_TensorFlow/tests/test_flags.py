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
"""The flags: what the test/*.sh scripts pass on reaches main.py (common names and the seed's
spellings), main.py's aliases, and the README names every flag."""

import os
import re
import shutil
import sys

import pytest

from common import cli
from common.tests import processes
from runtime import flags

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Main.py flags a script passes on as given (any main.py flag is a script flag), with values main.py accepts.
PASSED_THROUGH = ["--alpha=0.5", "--height=32", "--width=32", "--class_number=0", "--checkpoint_every=5",
                  "--bn_momentum=0.9", "--seed=1", "--optimizer=rmsprop",
                  "--lr_schedule=step", "--warmup_epochs=1", "--lr_decay_epochs=2", "--lr_decay_rate=0.9",
                  "--label_smoothing=0.1", "--dropout=0.3", "--weights=/runs/earlier", "--freeze_backbone_epochs=1",
                  "--loss_scale=128", "--use_xla=False", "--skip_bad_images=True", "--cache_budget_mb=10",
                  "--recipe=paper", "--weight_decay=1e-4", "--ema_momentum=0.99", "--log_every=2",
                  "--max_rotation=10"]


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    """A --data_path main.py's checks accept: train/ and validation/ (the scripts check flags before running)."""
    root = tmp_path_factory.mktemp("folders")
    for split in ("train", "validation"):
        (root / split / "a").mkdir(parents=True)
    return str(root)


def _launch_command(data_path, argv, script="train_full_1p.sh"):
    """The launcher command a script would run (MZ_DRY_RUN=1, common/train_script.sh), one argument a line."""
    return processes.run(["bash", os.path.join(MODEL_DIR, "test", script), f"--data_path={data_path}", *argv],
                         env=dict(os.environ, MZ_DRY_RUN="1"), capture_output=True, text=True, timeout=60)


def _script_args(data_path, argv):
    """The script's result and the main.py flags it would run, as main.py's parser reads them."""
    result = _launch_command(data_path, argv)
    lines = result.stdout.splitlines()
    main_args = lines[lines.index(os.path.join(MODEL_DIR, "main.py")) + 1:] if result.returncode == 0 else None
    return result, flags.build_parser().parse_args(main_args) if main_args is not None else None


def _readme():
    with open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.subprocess
def test_script_flags_reach_main_py(data_path):
    result, args = _script_args(data_path, ["--batch_size=4", "--max_step=3", "--train_epochs=2", "--keep_checkpoints=2",
                                 *PASSED_THROUGH])
    assert result.returncode == 0, result.stderr
    assert set(PASSED_THROUGH) <= set(result.stdout.splitlines())
    assert (args.keep_checkpoints, args.checkpoint_every) == (2, 5)
    assert (args.loss_scale, args.dropout, args.lr_decay_epochs, args.lr_decay_rate) == (128, 0.3, 2, 0.9)
    assert (args.batch_size, args.max_steps, args.train_epochs, args.data_path) == (4, 3, 2, data_path)
    # Without --ckpt_path the run folder is the launcher's fresh per-rank folder: nothing to resume.
    assert (args.model_dir, args.resume) == ("{output_dir}/ckpt", False)
    # The script's settings come first, a flag the user gives wins; main.py's spellings work as in main.py.
    assert (args.mode, _script_args(data_path, [])[1].batch_size) == ("train_and_evaluate", 32)
    result, args = _script_args(data_path, ["--use_amp", "--batch_size", "8"])
    assert result.returncode == 0 and (args.use_amp, args.batch_size) == (True, 8)


@pytest.mark.subprocess
def test_seed_spellings_and_run_folder(data_path, tmp_path):
    result, args = _script_args(data_path, ["--batch=4", "--epochs=2", "--train_steps=5", f"--modeldir={tmp_path / 'run'}",
                                 "--loss_scale=False", "--save_interval=7"])
    assert result.returncode == 0, result.stderr
    assert (args.batch_size, args.train_epochs, args.max_steps, args.loss_scale,
            args.checkpoint_every) == (4, 2, 5, 0, 7)
    # The seed's --loss_scale=True|False reach main.py as given, which reads them as the scripts document.
    assert "--loss_scale=False" in result.stdout.splitlines()
    assert (args.model_dir, args.resume) == (str(tmp_path / "run"), True) and (tmp_path / "run").is_dir()
    _, args = _script_args(data_path, [f"--ckpt_path={tmp_path / 'run'}", "--resume=False", "--loss_scale=True",
                            "--max_steps=7"])
    assert (args.resume, args.loss_scale, args.max_steps) == (False, None, 7)
    # --recipe=paper scales the learning rate itself unless the script is given one, whatever its value.
    result, _ = _script_args(data_path, ["--recipe=paper"])
    assert not [arg for arg in result.stdout.splitlines() if arg.startswith("--learning_rate")]
    assert _script_args(data_path, ["--recipe=paper", "--learning_rate=0.01"])[1].learning_rate == 0.01
    assert _script_args(data_path, ["--recipe=paper", "--learning_rate=0.001"])[1].learning_rate == 0.001


@pytest.mark.subprocess
def test_warmup_covers_the_first_logging_interval(data_path):
    # The launcher leaves out the steps up to the warm-up; a resumed segment's first TRAIN line covers
    # the step that traced the graph again, and all steps of its logging interval.
    def warmup(argv, script):
        lines = _launch_command(data_path, argv, script).stdout.splitlines()
        return [line.split("=", 1)[1] for line in lines if line.startswith("--warmup_steps=")]
    assert warmup([], "train_full_1p.sh") == ["2"] and warmup(["--log_every=5"], "train_full_1p.sh") == ["5"]
    assert warmup(["--log_every=3"], "train_performance_1p.sh") == ["5"]


@pytest.mark.subprocess
def test_help_lists_the_common_names():
    result = processes.run(["bash", "test/train_performance_8p.sh", "--help"], cwd=MODEL_DIR,
                           capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: bash test/train_performance_8p.sh")  # its own help
    for name in ("--batch_size", "--train_epochs", "--train_steps", "--learning_rate", "--ckpt_path",
                 "--resume", "--batch ", "--modeldir", "--loss_scale", "this script sets --mode=train --benchmark"):
        assert name in result.stdout, name


@pytest.mark.parametrize("argv", [
    ["--mode=evaluate", "--model_dir=R", "--batch_size=3", "--max_steps=4", "--log_every=5",
     "--checkpoint_every=6", "--resume=False"],
    ["--mode=evaluate", "--modeldir=R", "--batch=3", "--max_step=4", "--log_every=5", "--save_interval=6",
     "--resume=False"],
    ["--mode=evaluate", "--save_dir=R", "--batch=3", "--max_step=4", "--log_every=5", "--save_interval=6",
     "--resume", "False"],
])
def test_main_py_common_names_and_aliases(argv):
    args = flags.parse_args(argv)
    _, given = cli.parse_args_given(flags.build_parser(), argv)
    assert (args.mode, args.model_dir, args.batch_size, args.max_steps, args.log_every) == ("evaluate", "R", 3, 4, 5)
    assert (args.checkpoint_every, args.resume) == (6, False)
    assert {"model_dir", "batch_size", "max_steps", "checkpoint_every", "resume"} <= given
    # Not given: a run folder that holds a checkpoint is refused (common/checkpoints.py).
    assert flags.parse_args([]).resume is None
    # The seed's --loss_scale spellings, as the scripts read them: True is the default dynamic scaling.
    assert [flags.parse_args([f"--loss_scale={v}"]).loss_scale for v in ("True", "false", "128")] == [None, 0, 128]


def test_readme_names_every_flag():
    readme = _readme()
    options = sorted(set(re.findall(r"--\w+", flags.build_parser().format_help())))
    assert [option for option in options if f"`{option}" not in readme] == []
    script_section = readme[readme.index("### 脚本参数"):readme.index("main.py flags (")]
    names = [flag.split("=")[0] for flag in PASSED_THROUGH]
    names += ["--train_steps", "--ckpt_path", "--resume", "--keep_checkpoints", "--batch", "--epochs", "--modeldir",
              "--save_interval", "--loss_scale"]
    assert [name for name in names if name not in script_section] == []


@pytest.mark.subprocess
def test_help_answers_at_once_and_a_lone_directory_says_what_it_needs(tmp_path, python_env):
    # --help and flag parsing load no TensorFlow (what makes them answer at once; no duration is asserted).
    result = processes.run([sys.executable, "main.py", "--help"], cwd=MODEL_DIR, capture_output=True, text=True,
                           env=python_env, timeout=120)
    assert result.returncode == 0 and "--batch_size" in result.stdout
    modules = processes.run(
        [sys.executable, "-c", "import contextlib, io, sys; import main; from runtime import flags; "
                               "flags.parse_args([])\nwith contextlib.suppress(SystemExit), "
                               "contextlib.redirect_stdout(io.StringIO()): flags.parse_args(['--help'])\n"
                               "print(' '.join(sys.modules))"],
        cwd=MODEL_DIR, capture_output=True, text=True, env=python_env, timeout=120)
    assert modules.returncode == 0, modules.stderr
    assert "tensorflow" not in modules.stdout.split()
    # The model directory alone, as ModelZoo hands it out: one line, exit 2.
    lone = tmp_path / "MobileNetV3_for_TensorFlow"
    shutil.copytree(MODEL_DIR, lone, ignore=shutil.ignore_patterns("tests", "test", ".pytest_cache", "__pycache__"))
    result = processes.run([sys.executable, "main.py", "--help"], cwd=lone, capture_output=True, text=True,
                           env=python_env, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"error: {lone} needs the repository's common/ folder beside it ({tmp_path / 'common'}); "
                             "copy the model directory with it\n")
