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
"""Tests of common/train_script.sh and common/script_flags.py, the flags of every model's test/*.sh,
through a stand-in model directory whose main.py prints what it got."""

import json
import os
import shutil
import sys

import pytest

from common.tests import processes

# Every test here runs a train script or the launcher.
pytestmark = pytest.mark.subprocess

COMMON = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPU_STAND_IN = os.path.join(COMMON, "tests", "npu_stand_in")
GENERATIONS = ("r1.8", "r1.10", "current")  # the stand-in adapter's (tests/npu_stand_in)

FLAGS_PY = """\
from common import cli, npu_utils
from common.errors import UserError


def build_parser():
    parser = cli.FlagParser(description="fake model")
    parser.add_argument("--data_path", "--data_dir", dest="data_path", default=None)
    parser.add_argument("--mode", choices=("train", "train_and_evaluate"), default="train_and_evaluate")
    parser.add_argument("--model_dir", "--save_dir", dest="model_dir", default="./results")
    parser.add_argument("--batch_size", type=int, default=8, help="per device (default 8)")
    parser.add_argument("--max_steps", type=int, default=0)
    parser.add_argument("--log_every", type=int, default=10)
    parser.add_argument("--depth", type=int, default=2, help="layers (default 2)")
    cli.add_bool_flag(parser, "--augment", "augment", default=False)
    cli.add_checkpoint_flags(parser, checkpoint_every=50)
    npu_utils.add_device_flags(parser)
    return parser


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    if args.depth > 9:
        raise UserError(f"--depth={args.depth}: at most 9")
    return args
"""

MAIN_PY = """\
import json, os, sys
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from common import errors, npu_utils
from runtime import flags

@errors.exit_on_user_error
def main():
    args = flags.parse_args()
    print("ARGS " + json.dumps(vars(args)))
    if os.environ.get("FAKE_OPEN_DEVICE") == "1":  # the device set-up, on the stand-in adapter
        ctx = npu_utils.setup_device(args)
        import npu_device
        print("OPTIONS " + json.dumps(npu_device.opened_options))
        print(f"RANKS {ctx.ranks.rank_id} {ctx.ranks.rank_size} {os.environ.get('RANK_TABLE_FILE', '')}")
    print("TRAIN step=1 loss=0.5 images_per_sec=2.0 elapsed_sec=1.0 step_ms=4000.0")
    return 0

sys.exit(main())
"""

SCRIPT_8P = """\
#!/usr/bin/env bash
# The fake model on several devices.
MZ_RANK_SIZE="${RANK_SIZE:-8}" MZ_SCRIPT="${BASH_SOURCE[0]}" \\
  exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_full_1p.sh" "$@"
"""

SCRIPT = """\
#!/usr/bin/env bash
# The fake model's accuracy run.
#   bash test/train_full_1p.sh --data_path=DIR
common_script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
[ -f "${common_script}" ] || { echo "[Error] ${common_script}: missing" >&2; exit 2; }
source "${common_script}"
mz_parse_flags --mode=train --max_steps=100 -- "$@"
echo "batch=${arg_batch_size} log_every=${arg_log_every} launch=${mz_launch_args[*]}"
mz_launch --case_kind=perf --warmup_steps="${arg_log_every}"
"""


@pytest.fixture
def fake_model(tmp_path):
    repo = tmp_path / "repo"
    model = repo / "Fake_for_TensorFlow"
    (model / "test").mkdir(parents=True)
    (model / "runtime").mkdir()
    os.symlink(COMMON, repo / "common")
    (model / "runtime" / "__init__.py").write_text("")
    (model / "runtime" / "flags.py").write_text(FLAGS_PY)
    (model / "main.py").write_text(MAIN_PY)
    (model / "test" / "env.sh").write_text("")
    (model / "test" / "model_flags.sh").write_text("Network=Fake_for_TensorFlow\n")
    script = model / "test" / "train_full_1p.sh"
    script.write_text(SCRIPT)
    (model / "test" / "train_full_8p.sh").write_text(SCRIPT_8P)
    (model / "configs").mkdir()
    shutil.copy(os.path.join(os.path.dirname(COMMON), "UNet_Medical_for_TensorFlow", "configs", "rank_table_8p.json"),
                model / "configs")
    (tmp_path / "data").mkdir()

    def run(*flags, script_name="train_full_1p.sh", env_extra=None):
        env = {k: v for k, v in os.environ.items() if k not in (
            "RANK_SIZE", "RANK_ID", "RANK_TABLE_FILE", "CM_CHIEF_IP", "TF_CONFIG", "WORKER_HOSTS", "MZ_RANK_SIZE")}
        env.update(MZ_OUTPUT_DIR=str(tmp_path / "output"), **(env_extra or {}))
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env["PATH"]])  # this stack's python3
        result = processes.run(["bash", str(model / "test" / script_name), *flags], capture_output=True, text=True,
                               timeout=180, cwd=tmp_path, env=env)
        log = tmp_path / "output" / "0" / "train_0.log"
        text = log.read_text() if log.exists() else ""
        args = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("ARGS ")]
        run.log = text
        log.unlink(missing_ok=True)
        return result, (args[0] if args else None)
    return run


def on_the_stand_in(generation="current", **extra):
    """The environment of a run whose main.py opens the stand-in adapter of ``generation``."""
    return dict(PYTHONPATH=os.pathsep.join([NPU_STAND_IN, os.environ.get("PYTHONPATH", "")]), FAKE_OPEN_DEVICE="1",
                NPU_STAND_IN_GENERATION=generation, **extra)


def test_help_is_the_scripts_own_with_main_pys_flags_and_the_scripts_settings(fake_model):
    result, _ = fake_model("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: bash test/train_full_1p.sh --data_path=DIR [flags]")
    for expected in ("The fake model's accuracy run.", "--ckpt_path DIR", "--precision_mode",
                     "this script sets --mode=train --max_steps=100", "--depth DEPTH", "layers (default 2)"):
        assert expected in result.stdout


def test_main_pys_flags_in_every_spelling_with_the_scripts_settings_and_the_users_winning(fake_model, tmp_path):
    result, args = fake_model("--data_path", "data", "--batch_size", "2", "--depth=4", "--augment", "--max_steps=7")
    assert result.returncode == 0, result.stderr
    assert "batch=2 log_every=10" in result.stdout
    assert args["data_path"] == str(tmp_path / "data") and args["mode"] == "train"
    assert (args["batch_size"], args["depth"], args["augment"], args["max_steps"]) == (2, 4, True, 7)
    assert args["model_dir"] == str(tmp_path / "output" / "0" / "ckpt") and args["resume"] is False
    assert (args["checkpoint_every"], args["keep_checkpoints"]) == (50, 3)  # main.py's defaults
    _, args = fake_model("--data_dir=data", "--train_steps=9", "--checkpoint_every", "7", "--keep_checkpoints=1")
    assert (args["max_steps"], args["checkpoint_every"], args["keep_checkpoints"]) == (9, 7, 1)


def test_ckpt_path_or_model_dir_is_an_absolute_run_folder_that_resumes_unless_told_not_to(fake_model, tmp_path):
    result, args = fake_model("--data_path=data", "--ckpt_path=runs/a")
    assert result.returncode == 0, result.stderr
    assert args["model_dir"] == str(tmp_path / "runs" / "a") and args["resume"] is True
    assert (tmp_path / "runs" / "a" / "logs" / "segment-001").is_dir()
    assert fake_model("--data_path=data", "--save_dir=runs/a", "--resume=False")[1]["resume"] is False


def test_a_ckpt_path_inside_output_survives_the_next_run_with_every_runs_log(fake_model, tmp_path):
    output = tmp_path / "output"
    for _ in range(2):
        result, _ = fake_model("--data_path=data", "--ckpt_path=output/0/ckpt")
        assert result.returncode == 0, result.stderr
        (output / "0" / "ckpt" / "ckpt-1.index").write_text("kept")
    assert (output / "0" / "ckpt" / "ckpt-1.index").read_text() == "kept"
    assert sorted(os.listdir(output / "0" / "ckpt" / "logs")) == ["segment-001", "segment-002"]
    assert "RunSegments = 2" in (output / "0" / "Fake_for_TensorFlow_bs8_1p_perf.log").read_text()


def test_the_debug_flags_are_main_pys_and_a_dump_goes_under_the_output_folder(fake_model, tmp_path):
    result, args = fake_model("--data_path=data", "--profiling", "--precision_mode", "allow_mix_precision")
    assert result.returncode == 0, result.stderr
    assert args["profiling"] is True and args["precision_mode"] == "allow_mix_precision"
    assert args["profiling_dump_path"] == str(tmp_path / "output" / "profiling")
    assert args["over_dump_path"] == os.path.join("output", "overflow_dump")  # not switched on: main.py's default


def adapter_options(log_text):
    """The options the stand-in adapter's open() saw, as the fake main.py printed them."""
    return json.loads(next(line[8:] for line in log_text.splitlines() if line.startswith("OPTIONS ")))


@pytest.mark.parametrize("generation", GENERATIONS)
def test_dump_steps_and_a_users_dump_folder_reach_the_adapter(fake_model, tmp_path, generation):
    result, args = fake_model("--data_path=data", "--data_dump_flag", "--data_dump_step=0|5|10", "--autotune",
                              f"--data_dump_path={tmp_path}/mine", env_extra=on_the_stand_in(generation))
    assert result.returncode == 0, result.stderr
    options = adapter_options(fake_model.log)
    assert (options["dump_step"], options["dump_path"]) == ("0|5|10", f"{tmp_path}/mine")
    assert (options.get("auto_tune_mode"), options.get("aoe_mode")) == (
        ("RL,GA", None) if generation == "r1.8" else (None, "2"))
    assert args["data_dump_path"] == f"{tmp_path}/mine"


@pytest.mark.parametrize("generation", GENERATIONS)
def test_a_users_overflow_dump_folder_reaches_the_adapter(fake_model, tmp_path, generation):
    result, _ = fake_model("--data_path=data", "--over_dump", "--over_dump_path=over",
                           env_extra=on_the_stand_in(generation))
    assert result.returncode == 0, result.stderr
    options = adapter_options(fake_model.log)
    assert (options["enable_dump_debug"], options["dump_path"]) == ("1", str(tmp_path / "over"))


def test_an_inherited_rank_size_runs_one_process_in_a_1p_script(fake_model, tmp_path):
    result, _ = fake_model("--data_path=data", env_extra={"RANK_SIZE": "2"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "output" / "0" / "Fake_for_TensorFlow_bs8_1p_perf.log").is_file()
    assert not (tmp_path / "output" / "1").exists()


def test_an_8p_script_refuses_fewer_than_two_ranks(fake_model, tmp_path):
    result, args = fake_model("--data_path=data", script_name="train_full_8p.sh", env_extra={"RANK_SIZE": "1"})
    assert result.returncode == 2 and args is None and not (tmp_path / "output").exists()
    assert result.stderr == ("[Error] RANK_SIZE=1: train_full_8p.sh runs 2 or more ranks (unset: 8); "
                             "the 1p scripts run one\n")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_an_8p_run_on_ascend_needs_a_filled_rank_table_before_any_rank_starts(fake_model, tmp_path, generation):
    result, args = fake_model("--data_path=data", script_name="train_full_8p.sh",
                              env_extra=on_the_stand_in(generation, RANK_SIZE="2"))
    assert result.returncode == 2 and args is None
    template = tmp_path / "repo" / "Fake_for_TensorFlow" / "configs" / "rank_table_8p.json"
    assert result.stderr == (f"[Error] RANK_TABLE_FILE={template}: 'SERVER_IP' is not an IP address: fill in the "
                             "template with this server's and its devices' addresses (README, several devices)\n")
    assert not (tmp_path / "output" / "0").exists()


@pytest.mark.parametrize("generation", GENERATIONS)
def test_an_8p_run_with_a_rank_table_runs_its_ranks_through_the_adapter(fake_model, tmp_path, generation):
    table = tmp_path / "rank_table.json"
    table.write_text(json.dumps({"server_count": "1", "status": "completed", "version": "1.0", "server_list": [
        {"server_id": "10.0.0.1", "device": [{"device_id": str(i), "device_ip": f"192.168.10{i}.1", "rank_id": str(i)}
                                             for i in range(2)]}]}))
    result, _ = fake_model("--data_path=data", "--rank_table_file=rank_table.json", script_name="train_full_8p.sh",
                           env_extra=on_the_stand_in(generation, RANK_SIZE="2"))
    assert result.returncode == 0, result.stderr
    assert f"RANKS 0 2 {table}" in fake_model.log
    assert f"RANKS 1 2 {table}" in (tmp_path / "output" / "1" / "train_1.log").read_text()
    assert (tmp_path / "output" / "0" / "Fake_for_TensorFlow_bs8_2p_perf.log").is_file()


def test_several_ranks_on_ascend_without_a_table_or_chief_stop_in_the_launcher(tmp_path):
    env = dict({k: v for k, v in os.environ.items() if k not in ("RANK_TABLE_FILE", "CM_CHIEF_IP")},
               RANK_SIZE="2", PYTHONPATH=NPU_STAND_IN)
    result = processes.run([sys.executable, os.path.join(COMMON, "launcher.py"), "launch", "--network=N",
                             "--batch_size=1", "--case_kind=perf", f"--output_root={tmp_path}/output", "--",
                             sys.executable, "-c", "print('ran')"], capture_output=True, text=True, timeout=60,
                           env=env)
    assert result.returncode == 2 and not (tmp_path / "output").exists()
    assert result.stderr == ("[Error] RANK_SIZE=2 on Ascend needs RANK_TABLE_FILE (the HCCL rank table; "
                             "train_full_8p.sh --rank_table_file) or CM_CHIEF_IP; neither is set\n")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_a_broken_adapter_install_stops_the_script_in_one_line(fake_model, generation):
    result, _ = fake_model("--data_path=data", env_extra=on_the_stand_in(generation, NPU_STAND_IN_BROKEN="1"))
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "npu_device is installed but does not import (ImportError: libge_runner" in error[0]
    assert "Traceback" not in fake_model.log


def test_a_run_folder_reached_through_a_symbolic_link_survives_the_next_run(fake_model, tmp_path):
    os.symlink(tmp_path, tmp_path / "link")
    kept = tmp_path / "output" / "0" / "keep_ck"
    for _ in range(2):
        result, _ = fake_model("--data_path=data", f"--ckpt_path={tmp_path}/link/output/0/keep_ck")
        assert result.returncode == 0, result.stderr
        (kept / "ckpt-1.index").write_text("kept")
    assert sorted(os.listdir(kept / "logs")) == ["segment-001", "segment-002"]


@pytest.mark.parametrize("flags, message", [
    (("--data_path=data", "--resume=maybe"), "argument --resume: expected True or False, got 'maybe'"),
    (("--data_path=data", "--ckpt_path=data/file"), "--ckpt_path=data/file is a file, not a folder"),
    (("--data_path=data", "--checkpoint_every=0"), "argument --checkpoint_every: expected an integer >= 1"),
    (("--data_path=data", "--batch_size", "abc"), "argument --batch_size: invalid int value: 'abc'"),
    (("--data_path=data", "--depht=3"), "unrecognized arguments: --depht=3"),
    (("--data_path=data", "--depth=10"), "--depth=10: at most 9"),
    (("--data_path=data", "--over_dump=perhaps"), "argument --over_dump: expected True or False"),
    (("--data_path=data", "--data_dump_step=0,5"), "argument --data_dump_step: expected steps and ranges"),
    (("--data_path=data", "--rank_table_file=t.json"), "--rank_table_file is for several devices"),
    (("--data_path=data", "--ckpt_path=made", "--depth=10"), "--depth=10: at most 9"),
    (("--data_path=data", "--ckpt_path=a", "--model_dir=b"), "--ckpt_path and main.py's --model_dir"),
    (("--data_path=missing",), "--data_path=missing is not a folder"),
    (("--batch_size=2",), 'para "data_path" must be config'),
])
def test_bad_flags_end_with_one_line_and_exit_2(fake_model, tmp_path, flags, message):
    (tmp_path / "data" / "file").write_text("")
    result, args = fake_model(*flags)
    assert result.returncode == 2 and args is None
    assert not (tmp_path / "made").exists()  # a refused flag creates nothing
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("[Error] ")


def test_a_model_directory_alone_says_what_it_needs(fake_model, tmp_path):
    alone = tmp_path / "alone"
    shutil.copytree(tmp_path / "repo" / "Fake_for_TensorFlow", alone / "Fake_for_TensorFlow")
    result = processes.run(["bash", "Fake_for_TensorFlow/test/train_full_1p.sh", "--help"], cwd=alone,
                           capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "common" in result.stderr
