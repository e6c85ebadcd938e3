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
"""The flags: the repository's parsed names with the seed's spellings as aliases, the shorthands
--patch_size, --centres and --n4, defaults shown by --help, --help and flag errors without TensorFlow,
an older run's config.json, and a lone copy of the directory."""

import json
import os
import shutil
import sys

import pytest

from common.errors import UserError
from common.tests import processes
from conftest import MODEL_DIR, PROBE, clean_env
from runtime import flags


def test_parsed_names_are_the_common_ones_and_the_seed_spellings_are_aliases():
    common = flags.parse_args(["--data_path", "d", "--model_dir", "m", "--mode", "train", "--max_steps", "7",
                               "--train_epochs", "3", "--batch_size", "4", "--learning_rate", "0.01",
                               "--log_every", "5", "--seed", "9", "--resume", "--checkpoint_every", "11",
                               "--keep_checkpoints", "2"])
    seed = flags.parse_args(["-r", "d", "--model_dir", "m", "--max_steps", "7", "-e", "3", "-bs", "4", "-lr", "0.01",
                             "--log_every_steps", "5", "--seed", "9", "-c", "True", "--save_every_steps", "11",
                             "--keep_checkpoints", "2"])
    assert vars(common) == vars(seed)
    assert {name: vars(common)[name] for name in ("data_path", "model_dir", "mode", "max_steps", "train_epochs",
                                                  "batch_size", "learning_rate", "log_every", "seed", "resume",
                                                  "checkpoint_every", "keep_checkpoints")} == \
        dict(data_path="d", model_dir="m", mode="train", max_steps=7, train_epochs=3, batch_size=4,
             learning_rate=0.01, log_every=5, seed=9, resume=True, checkpoint_every=11, keep_checkpoints=2)
    assert flags.parse_args(["-r", "d", "--epochs", "2", "--continue_training=False"]).train_epochs == 2


def test_patch_size_and_centres_set_the_flags_they_stand_for(tmp_path):
    args = flags.parse_args(["-r", str(tmp_path), "--patch_size", "30", "--centres=4", "--n4"])
    assert (args.patch_width, args.patch_height, args.patch_depth, args.label_size) == (30, 30, 30, 4)
    assert (args.tumour_centres, args.background_centres, args.n4_correction) == (4, 4, True)
    args = flags.parse_args(["-r", str(tmp_path)])  # without them: the reference's patch and centres
    assert (args.patch_width, args.label_size, args.tumour_centres) == (38, 12, 200)


@pytest.mark.parametrize("argv, given", [(["--patch_size=30", "-ws", "30"], "--patch_width"),
                                         (["--centres=4", "--tumour_centres=4"], "--tumour_centres")])
def test_a_shorthand_and_a_flag_it_sets_are_refused_together(tmp_path, argv, given):
    with pytest.raises(UserError, match=f"not both \\({given} given\\)"):
        flags.parse_args(["-r", str(tmp_path), *argv])


def test_help_shows_each_default_once_stated():
    text = " ".join(flags.build_parser().format_help().split())
    for shown in ("(default auto)", "(default 5)", "(default 2)", "(default 0.0005)", "(default 20)",
                  "(default 1234)", "(default block)", "(default 1000)"):
        assert shown in text, shown


@pytest.mark.subprocess
def test_a_bad_value_is_one_line_and_exit_2():
    result = processes.run([sys.executable, "main.py", "-r", "d", "--batch_size=abc"], cwd=MODEL_DIR,
                           env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: argument -bs/--batch_size: invalid int value: 'abc' (see --help)"]


@pytest.mark.subprocess
def test_help_and_flag_errors_load_no_tensorflow():
    for argv, code in ((["--help"], 0), (["-r", "d", "--batch_size=abc"], 2), (["-r", "d", "-ws", "30"], 2)):
        result = processes.run([sys.executable, "-c", PROBE, "main.py", *argv], cwd=MODEL_DIR, env=clean_env(),
                               capture_output=True, text=True, timeout=120)
        assert result.stdout.splitlines()[-1] == f"False {code}", (argv, result.stdout, result.stderr)


def test_an_older_runs_config_json_with_the_earlier_flag_names_still_reads(tmp_path):
    older = {"model_name": "dense48", "width_multiplier": 0.5, "n4_correction": False, "epochs": 3,
             "log_every_steps": 7, "data_path": "d", "model_dir": str(tmp_path)}
    (tmp_path / "config.json").write_text(json.dumps(older))
    args = flags.parse_args(["-r", "d", "--mode", "test", "--model_dir", str(tmp_path)])
    assert (args.model_name, args.width_multiplier, args.n4_correction) == ("dense48", 0.5, False)
    # It predates --normalisation: its weights were trained on zero-background inputs, and are tested so.
    assert args.normalisation == "zero_background"


def test_test_and_predict_take_the_normalisation_of_the_training_run(tmp_path, capsys):
    assert flags.parse_args(["-r", "d"]).normalisation == "reference" and flags.parse_args(["-r", "d"]).sampling \
        == "reference"
    config = {"model_name": "dense24", "width_multiplier": 1.0, "n4_correction": True,
              "normalisation": "zero_background", "data_path": "d", "model_dir": str(tmp_path)}
    (tmp_path / "config.json").write_text(json.dumps(config))
    args = flags.parse_args(["-r", "d", "--mode", "predict", "--model_dir", str(tmp_path)])
    assert args.normalisation == "zero_background" and "--normalisation=zero_background" in capsys.readouterr().out
    with pytest.raises(UserError, match="--normalisation=reference contradicts the training run"):
        flags.parse_args(["-r", "d", "--mode", "test", "--model_dir", str(tmp_path), "--normalisation=reference"])


@pytest.mark.parametrize("spelling, mode", [("test", "evaluate"), ("train_test", "train_and_evaluate"),
                                            ("evaluate", "evaluate"), ("train_and_evaluate", "train_and_evaluate")])
def test_the_references_test_and_train_test_are_evaluate_and_train_and_evaluate(tmp_path, spelling, mode):
    args = flags.parse_args(["-r", "d", "--mode", spelling, "--model_dir", str(tmp_path)])
    assert (args.mode, args.mode_flag) == (mode, f"--mode={spelling}")
    assert flags.trains(args) == mode.startswith("train")



@pytest.mark.parametrize("argv, message", [(["-bs", "0"], "-bs must be at least 1"),
                                           (["-lp", "missing"], "-lp missing: no checkpoint there"),
                                           (["--val_cases", "missing.txt"], "--val_cases=missing.txt: expected")])
def test_a_refused_flag_creates_nothing(tmp_path, capsys, argv, message):
    import main
    (tmp_path / "data").mkdir()
    with pytest.raises(SystemExit) as exited:
        main.main(["-r", str(tmp_path / "data"), "--model_dir", str(tmp_path / "run"), *argv])
    assert exited.value.code == 2 and message in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["data"]

@pytest.mark.subprocess
def test_a_lone_copy_of_the_directory_says_in_one_line_that_it_needs_common(tmp_path):
    lone = tmp_path / os.path.basename(MODEL_DIR)
    shutil.copytree(MODEL_DIR, lone, ignore=shutil.ignore_patterns("tests", "output", "results", "__pycache__"))
    for argv in (["--help"], ["-r", "d"]):
        result = processes.run([sys.executable, "main.py", *argv], cwd=lone, env=clean_env(), capture_output=True,
                               text=True, timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and result.stdout == "" and len(lines) == 1, result.stderr
        assert "needs the repository's common/ folder" in lines[0] and str(tmp_path / "common") in lines[0]
