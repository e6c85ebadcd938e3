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
"""The flags: what the test/*.sh scripts pass on reaches main.py, and the README names every flag."""

import os
import subprocess

from runtime import config

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every main.py flag test/model_flags.sh passes through as given, with a value main.py accepts.
PASSED_THROUGH = ["--alpha=0.5", "--height=32", "--width=32", "--class_number=0", "--save_interval=5",
                  "--bn_momentum=0.9", "--seed=1", "--optimizer=rmsprop", "--lr_schedule=step",
                  "--warmup_epochs=1", "--lr_decay_epochs=2", "--lr_decay_rate=0.9", "--label_smoothing=0.1",
                  "--dropout=0.3", "--weights=/runs/earlier", "--freeze_backbone_epochs=1", "--loss_scale=128",
                  "--use_xla=False", "--skip_bad_images=True", "--log_every=2"]
# Sources the scripts' flag module, feeds it the flags and prints the main.py arguments (exit 3: rejected).
MAIN_ARGS = ('source test/model_flags.sh; for flag in "$@"; do model_flag "$flag" || exit 3; done; '
             'data_path=/data; model_args; printf "%s\\n" "${args[@]}"')


def _script_args(flags):
    return subprocess.run(["bash", "-c", MAIN_ARGS, "bash", *flags], cwd=MODEL_DIR, capture_output=True, text=True)


def _readme():
    with open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def test_script_flags_reach_main_py():
    result = _script_args(["--batch_size=4", "--max_step=3", *PASSED_THROUGH])
    assert result.returncode == 0, result.stderr
    argv = result.stdout.splitlines()
    assert set(PASSED_THROUGH) <= set(argv)
    args = config.build_parser().parse_args(argv)
    assert (args.loss_scale, args.dropout, args.lr_decay_epochs, args.lr_decay_rate) == (128, 0.3, 2, 0.9)
    assert (args.batch, args.max_step, args.data_path) == (4, 3, "/data")
    # As in the other models' scripts, mixed precision is the shared --precision_mode, not --use_amp.
    assert _script_args(["--use_amp=True"]).returncode == 3


def test_readme_names_every_flag():
    readme = _readme()
    options = [option for action in config.build_parser()._actions for option in action.option_strings
               if option.startswith("--")]
    assert [option for option in options if f"`{option}" not in readme] == []
    script_section = readme[readme.index("### 脚本参数"):readme.index("main.py flags (")]
    names = [flag.split("=")[0] for flag in PASSED_THROUGH]
    assert [name for name in names if name not in script_section] == []
