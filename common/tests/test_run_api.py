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
"""Tests of what the three models share besides the device: the errors' exit
statuses, flags given on the command line, the run's config.json and the one
way to count speed (StepTimer)."""

import argparse
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from common import cli, errors, launcher, npu_utils  # noqa: E402
from common.errors import UserError  # noqa: E402


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_step_timer_counts_the_input_pipeline_and_the_step():
    """A fake loop: each batch takes 0.2 s to read and its step 0.3 s; batch 4 on 2 ranks.
    The TRAIN line's images/s is 8 images per 0.5 s of wall clock, not per 0.3 s of step."""
    clock = FakeClock()
    timer = npu_utils.StepTimer(images_per_step=4 * 2, clock=clock)
    lines = []
    for step in range(1, 7):
        clock.advance(0.2)  # the input pipeline
        clock.advance(0.3)  # the training step
        if step % 3 == 0:
            lines.append(timer.line(step, loss=0.5))
    assert lines == ["TRAIN step=3 loss=0.500000 images_per_sec=16.00 elapsed_sec=1.50 step_ms=500.000",
                     "TRAIN step=6 loss=0.500000 images_per_sec=16.00 elapsed_sec=3.00 step_ms=500.000"]
    parsed = [launcher.parse_step_line(line) for line in lines]
    assert launcher.throughput(parsed, warmup_steps=0, images_per_step=8) == 16.0


def test_step_timer_leaves_out_paused_time_and_starts_at_a_resumed_step():
    clock = FakeClock()
    timer = npu_utils.StepTimer(images_per_step=10, first_step=100, clock=clock)
    clock.advance(1.0)  # steps 101 and 102
    with timer.paused():
        clock.advance(30.0)  # a mid-run evaluation
    line = timer.line(102, 0.1)
    assert line == "TRAIN step=102 loss=0.100000 images_per_sec=20.00 elapsed_sec=31.00 step_ms=500.000"
    assert timer.last_rate == 20.0 and timer.elapsed() == 31.0


@pytest.mark.parametrize("error, status", [(UserError("--data_path=/x does not exist"), 2),
                                           (errors.TrainingDiverged("loss is nan at step 7"), 3)])
def test_entry_points_turn_both_errors_into_one_line_and_their_status(error, status, capsys):
    @errors.exit_on_user_error
    def main():
        raise error

    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == status == (errors.DIVERGED_EXIT if status == 3 else 2)
    assert capsys.readouterr().err == f"error: {error}\n"


def _parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--exec_mode", "--mode", dest="exec_mode", default="train")
    parser.add_argument("--base_filters", type=int, default=64)
    cli.add_bool_flag(parser, "--resume_training", "continue", aliases=("--resume",))
    return parser


def test_parse_args_given_names_the_flags_on_the_command_line_under_any_alias():
    args, given = cli.parse_args_given(_parser(), ["--mode=evaluate", "--resume"])
    assert (args.exec_mode, args.base_filters, args.resume_training) == ("evaluate", 64, True)
    assert given == {"exec_mode", "resume_training"}
    args, given = cli.parse_args_given(_parser(), ["--base_filters=64", "--resume_training=False"])
    assert given == {"base_filters", "resume_training"} and args.resume_training is False


def test_run_config_round_trip_is_atomic_and_refuses_a_contradicting_flag(tmp_path, capsys):
    assert cli.read_run_config(str(tmp_path)) is None
    cli.write_run_config(str(tmp_path), {"base_filters": 8, "exec_mode": "train"})
    assert sorted(os.listdir(tmp_path)) == ["config.json"]  # no temporary file left behind
    args, given = cli.parse_args_given(_parser(), ["--mode=evaluate"])
    config = cli.take_from_run_config(args, given, ["base_filters"], str(tmp_path))
    assert config == {"base_filters": 8, "exec_mode": "train"} and args.base_filters == 8
    assert capsys.readouterr().out == f"[flags] from {tmp_path}/config.json: --base_filters=8\n"
    args, given = cli.parse_args_given(_parser(), ["--base_filters=4"])
    with pytest.raises(UserError) as error:
        cli.take_from_run_config(args, given, ["base_filters"], str(tmp_path), why="the checkpoint's width")
    assert str(error.value) == (f"--base_filters=4 contradicts the training run in {tmp_path}/config.json, "
                                "which used --base_filters=8 (the checkpoint's width); leave --base_filters out")


def test_a_run_config_that_is_not_an_object_is_one_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps([1, 2]))
    with pytest.raises(UserError, match="config.json: expected a JSON object"):
        cli.read_run_config(str(tmp_path))
    (tmp_path / "config.json").write_text("{trunc")
    with pytest.raises(UserError, match="cannot be read as JSON"):
        cli.read_run_config(str(tmp_path))
