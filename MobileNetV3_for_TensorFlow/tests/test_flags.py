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
import subprocess
import sys
import time

import pytest

from runtime import flags

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every main.py flag test/model_flags.sh passes through as given, with a value main.py accepts.
PASSED_THROUGH = ["--alpha=0.5", "--height=32", "--width=32", "--class_number=0", "--checkpoint_every=5",
                  "--bn_momentum=0.9", "--seed=1", "--optimizer=rmsprop",
                  "--lr_schedule=step", "--warmup_epochs=1", "--lr_decay_epochs=2", "--lr_decay_rate=0.9",
                  "--label_smoothing=0.1", "--dropout=0.3", "--weights=/runs/earlier", "--freeze_backbone_epochs=1",
                  "--loss_scale=128", "--use_xla=False", "--skip_bad_images=True", "--cache_budget_mb=10",
                  "--recipe=paper", "--weight_decay=1e-4", "--ema_momentum=0.99", "--log_every=2"]
# What a test/*.sh script does before mz_launch: the shared flag loop, the run folder, the
# main.py arguments (printed one a line). Run from test/, as a script sourced there would.
MAIN_ARGS = ('source ../../common/train_script.sh; source model_flags.sh "$@"; mz_parse_flags "$@"; mz_run_folder; '
             'model_args; printf "%s\\n" "${args[@]}"')


def _script_args(argv):
    result = subprocess.run(["bash", "-c", MAIN_ARGS, "bash", "--data_path=/tmp", *argv],
                            cwd=os.path.join(MODEL_DIR, "test"), capture_output=True, text=True)
    return result, flags.build_parser().parse_args(result.stdout.splitlines()) if result.returncode == 0 else None


def _readme():
    with open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def test_script_flags_reach_main_py():
    result, args = _script_args(["--batch_size=4", "--max_step=3", "--train_epochs=2", "--keep_checkpoints=2",
                                 *PASSED_THROUGH])
    assert result.returncode == 0, result.stderr
    assert set(PASSED_THROUGH) <= set(result.stdout.splitlines())
    assert (args.keep_checkpoints, args.checkpoint_every) == (2, 5)
    assert (args.loss_scale, args.dropout, args.lr_decay_epochs, args.lr_decay_rate) == (128, 0.3, 2, 0.9)
    assert (args.batch_size, args.max_steps, args.train_epochs, args.data_path) == (4, 3, 2, "/tmp")
    # Without --ckpt_path the run folder is the launcher's fresh per-rank folder: nothing to resume.
    assert (args.model_dir, args.resume) == ("{output_dir}/ckpt", False)
    # As in the other models' scripts, mixed precision is the shared --precision_mode, not --use_amp.
    result, _ = _script_args(["--use_amp=True"])
    assert result.returncode == 1 and "unknown flag '--use_amp=True'" in result.stderr


def test_seed_spellings_and_run_folder(tmp_path):
    result, args = _script_args(["--batch=4", "--epochs=2", "--train_steps=5", f"--modeldir={tmp_path / 'run'}",
                                 "--loss_scale=False", "--save_interval=7"])
    assert result.returncode == 0, result.stderr
    assert (args.batch_size, args.train_epochs, args.max_steps, args.loss_scale,
            args.checkpoint_every) == (4, 2, 5, 0, 7)
    # The seed's --loss_scale=True|False reach main.py as given, which reads them as the scripts document.
    assert "--loss_scale=False" in result.stdout.splitlines()
    assert (args.model_dir, args.resume) == (str(tmp_path / "run"), True) and (tmp_path / "run").is_dir()
    _, args = _script_args([f"--ckpt_path={tmp_path / 'run'}", "--resume=False", "--loss_scale=True",
                            "--max_steps=7"])
    assert (args.resume, args.loss_scale, args.max_steps) == (False, None, 7)
    # --recipe=paper scales the learning rate itself unless the script is given one, whatever its value.
    result, _ = _script_args(["--recipe=paper"])
    assert not [arg for arg in result.stdout.splitlines() if arg.startswith("--learning_rate")]
    assert _script_args(["--recipe=paper", "--learning_rate=0.01"])[1].learning_rate == 0.01
    assert _script_args(["--recipe=paper", "--learning_rate=0.001"])[1].learning_rate == 0.001


def test_warmup_covers_the_first_logging_interval():
    # The launcher leaves out the steps up to the warm-up; a resumed segment's first TRAIN line covers
    # the step that traced the graph again, and all steps of its logging interval.
    def warmup(argv, base):
        result = subprocess.run(["bash", "-c", f'source ../../common/train_script.sh; source model_flags.sh; '
                                               f'mz_parse_flags "$@"; model_warmup {base}', "bash", "--data_path=/tmp",
                                 *argv], cwd=os.path.join(MODEL_DIR, "test"), capture_output=True, text=True)
        return result.stdout.strip()
    assert [warmup([], 2), warmup(["--log_every=5"], 2), warmup(["--log_every=3"], 5)] == ["2", "5", "5"]


def test_help_lists_the_common_names():
    result = subprocess.run(["bash", "test/train_performance_8p.sh", "--help"], cwd=MODEL_DIR,
                            capture_output=True, text=True)
    assert result.returncode == 0
    for name in ("--batch_size", "--train_epochs", "--train_steps", "--learning_rate", "--ckpt_path",
                 "--resume", "--batch=N", "--modeldir=DIR", "--loss_scale=True|False"):
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
    args, given = flags.parse_args(argv)
    assert (args.mode, args.model_dir, args.batch_size, args.max_steps, args.log_every) == ("evaluate", "R", 3, 4, 5)
    assert (args.checkpoint_every, args.resume) == (6, False)
    assert {"model_dir", "batch_size", "max_steps", "checkpoint_every", "resume"} <= given
    # Not given: a run folder that holds a checkpoint is refused (common/checkpoints.py).
    assert flags.parse_args([])[0].resume is None
    # The seed's --loss_scale spellings, as the scripts read them: True is the default dynamic scaling.
    assert [flags.parse_args([f"--loss_scale={v}"])[0].loss_scale for v in ("True", "false", "128")] == [None, 0, 128]


def test_readme_names_every_flag():
    readme = _readme()
    options = sorted(set(re.findall(r"--\w+", flags.build_parser().format_help())))
    assert [option for option in options if f"`{option}" not in readme] == []
    script_section = readme[readme.index("### 脚本参数"):readme.index("main.py flags (")]
    names = [flag.split("=")[0] for flag in PASSED_THROUGH]
    names += ["--train_steps", "--ckpt_path", "--resume", "--keep_checkpoints", "--batch", "--epochs", "--modeldir",
              "--save_interval", "--loss_scale"]
    assert [name for name in names if name not in script_section] == []


def test_help_answers_at_once_and_a_lone_directory_says_what_it_needs(tmp_path, python_env):
    # --help loads no TensorFlow (generous bound for a loaded 2-core machine; about 0.1 s when quiet).
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "main.py", "--help"], cwd=MODEL_DIR, capture_output=True, text=True,
                            env=python_env)
    assert result.returncode == 0 and "--batch_size" in result.stdout
    assert time.perf_counter() - began < 1.0
    assert "tensorflow" not in subprocess.run(
        [sys.executable, "-c", "import sys; import main; from runtime import flags; flags.parse_args([]); "
                               "print(' '.join(sys.modules))"],
        cwd=MODEL_DIR, capture_output=True, text=True, env=python_env).stdout.split()
    # The model directory alone, as ModelZoo hands it out: one line, exit 2.
    lone = tmp_path / "MobileNetV3_for_TensorFlow"
    shutil.copytree(MODEL_DIR, lone, ignore=shutil.ignore_patterns("tests", "test", ".pytest_cache", "__pycache__"))
    result = subprocess.run([sys.executable, "main.py", "--help"], cwd=lone, capture_output=True, text=True,
                            env=python_env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"error: {lone} needs the repository's common/ folder beside it ({tmp_path / 'common'}); "
                             "copy the model directory with it\n")
