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
"""Flag checks, the training run's config.json in evaluate and predict, the README's flag table."""

import os
import re
import shutil
import sys

import pytest

from common import cli
from common.errors import UserError
from common.tests import processes
from conftest import MODEL_DIR
from runtime import flags


@pytest.mark.parametrize("argv,message", [
    (["--tile_size=570"], "nearest valid sizes are 556 and 572"),
    (["--crossvalidation_idx=5"], "0..4"),
    (["--exec_mode=train_and_evaluate"], "needs --crossvalidation_idx"),
    # The training benchmark is followed by the evaluation, which needs the fold too.
    (["--exec_mode=train_and_evaluate", "--benchmark", "--max_steps=300"], "needs --crossvalidation_idx"),
    (["--exec_mode=evaluate"], "no training run there"),
    (["--exec_mode=predict"], "no training run there"),
    (["--batch_size=0"], "--batch_size=0"),
    (["--n_classes=1"], "--n_classes=1"),
    (["--benchmark", "--max_steps=10", "--warmup_steps=10"], "leaves no step"),
    (["--seed=-1"], r"--seed=-1 must be in 0\.\.4294967295 \(NumPy's seed range\)"),
    (["--seed=4294967296"], "--seed=4294967296 must be in 0"),
    (["--save_probabilities"], "--save_probabilities writes predictions; --mode=train makes none"),
    (["--mode=train_and_predict", "--save_probabilities", "--n_classes=3"], "--n_classes=3 has 3 classes"),
])
def test_bad_flags(argv, message, tmp_path):
    with pytest.raises(UserError, match=message):
        flags.parse_args([f"--model_dir={tmp_path}", *argv])


def test_defaults_are_the_seed_readme_ones():
    args = flags.parse_args([])
    assert (args.mode, args.batch_size, args.max_steps, args.learning_rate, args.weight_decay,
            args.warmup_steps, args.log_every, args.seed) == ("train", 1, 1000, 1e-4, 5e-4, 200, 100, 0)


def test_the_mode_words_nvidias_train_and_predict_and_errors_naming_the_flag_as_typed(tmp_path):
    assert flags.MODES == cli.MODES[:4]
    assert flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=train_and_predict"]).mode == "train_and_predict"
    with pytest.raises(UserError, match=r"^--exec_mode=train_and_evaluate needs --crossvalidation_idx"):
        flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=train_and_evaluate"])
    with pytest.raises(UserError, match=r"^--mode=test: expected one of train, evaluate, "):
        flags.parse_args([f"--model_dir={tmp_path}", "--mode=test"])
    # NVIDIA's --no-augment and --no-benchmark show no default of their own (the flags' default is False).
    text = " ".join(flags.build_parser().format_help().split())
    assert "--no-augment NVIDIA's --augment=False --augment_set" in text
    assert "--no-benchmark NVIDIA's --benchmark=False --evaluate_every" in text


def test_evaluate_benchmark_needs_no_fold(tmp_path):
    args = flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=evaluate", "--benchmark"])
    assert args.crossvalidation_idx is None


def _training_run(model_dir, *argv):
    """Write the config.json of a training run with these flags into ``model_dir``."""
    cli.write_run_config(str(model_dir), vars(flags.parse_args([f"--model_dir={model_dir}", *argv])))


def test_evaluate_and_predict_take_the_network_and_fold_from_the_training_run(tmp_path, capsys):
    _training_run(tmp_path, "--base_filters=4", "--tile_size=220", "--n_classes=3", "--seed=7",
                  "--crossvalidation_idx=2", "--batch_size=4")
    args = flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=evaluate"])
    assert (args.base_filters, args.n_classes, args.tile_size, args.seed, args.crossvalidation_idx) == (4, 3, 220, 7, 2)
    # The batch size groups eval_dice_score's batches: the training run's, so evaluate repeats its figure.
    assert args.batch_size == 4
    assert (f"[flags] from {tmp_path}/config.json: --base_filters=4 --n_classes=3 --seed=7 "
            "--crossvalidation_idx=2 --fold_scheme=partition --tile_size=220 --input_mode=overlap_tile --batch_size=4"
            ) in capsys.readouterr().out
    # Repeating the training run's values is fine; the tile size may differ (fully convolutional).
    args = flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=evaluate", "--base_filters=4", "--seed=7",
                             "--tile_size=252"])
    assert (args.base_filters, args.tile_size) == (4, 252)
    # predict does not use the fold: another --seed is no contradiction.
    args = flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=predict", "--seed=1"])
    assert (args.base_filters, args.n_classes, args.seed, args.crossvalidation_idx) == (4, 3, 1, None)
    # Training modes take nothing from an earlier run.
    assert flags.parse_args([f"--model_dir={tmp_path}", "--resume_training"]).base_filters == 64


@pytest.mark.parametrize("argv,message", [
    (["--exec_mode=evaluate", "--crossvalidation_idx=0"],
     "--crossvalidation_idx=0 contradicts the training run in {dir}/config.json, which used "
     "--crossvalidation_idx=2 (its checkpoint fits only that network, and another fold or seed would score "
     "slices it trained on); leave --crossvalidation_idx out"),
    (["--exec_mode=evaluate", "--seed=1"], "--seed=1 contradicts the training run"),
    (["--exec_mode=predict", "--base_filters=64"],
     "--base_filters=64 contradicts the training run in {dir}/config.json, which used --base_filters=4 "
     "(its checkpoint fits only that network); leave --base_filters out"),
])
def test_a_flag_that_contradicts_the_training_run_is_refused(tmp_path, argv, message):
    _training_run(tmp_path, "--base_filters=4", "--crossvalidation_idx=2")
    with pytest.raises(UserError) as error:
        flags.parse_args([f"--model_dir={tmp_path}", *argv])
    assert message.format(dir=tmp_path) in str(error.value)


def test_evaluate_and_predict_refuse_another_input_mode_and_name_another_data_dir(tmp_path, capsys):
    _training_run(tmp_path, "--crossvalidation_idx=2", "--input_mode=resize", f"--data_dir={tmp_path}/isbi")
    for mode in ("evaluate", "predict"):
        with pytest.raises(UserError, match=f"--input_mode=overlap_tile contradicts the training run in "
                                            f"{tmp_path}/config.json, which used --input_mode=resize"):
            flags.parse_args([f"--model_dir={tmp_path}", f"--exec_mode={mode}", "--input_mode=overlap_tile"])
        capsys.readouterr()
        args = flags.parse_args([f"--model_dir={tmp_path}", f"--exec_mode={mode}", f"--data_dir={tmp_path}/other"])
        assert args.input_mode == "resize"
        assert (f"[flags] --data_path={tmp_path}/other is not the training run's --data_path={tmp_path}/isbi"
                in capsys.readouterr().out)
    flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=predict", f"--data_dir={tmp_path}/isbi/"])
    assert "is not the training run's" not in capsys.readouterr().out


def test_an_old_runs_config_with_the_reference_key_names_still_reads(tmp_path, capsys):
    """A config.json saved with ``data_dir`` and ``exec_mode`` (the earlier parsed names) works as before."""
    config = vars(flags.parse_args([f"--model_dir={tmp_path}", "--crossvalidation_idx=1", "--base_filters=4",
                                    f"--data_path={tmp_path}/isbi"]))
    config["data_dir"], config["exec_mode"] = config.pop("data_path"), config.pop("mode")
    cli.write_run_config(str(tmp_path), config)
    args = flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=evaluate", f"--data_dir={tmp_path}/other"])
    assert (args.mode, args.base_filters, args.crossvalidation_idx) == ("evaluate", 4, 1)
    assert f"is not the training run's --data_path={tmp_path}/isbi" in capsys.readouterr().out


def test_evaluate_refuses_a_run_that_trained_on_every_slice(tmp_path):
    _training_run(tmp_path, "--base_filters=4")
    for fold in ([], ["--crossvalidation_idx=0"]):
        with pytest.raises(UserError, match="no --crossvalidation_idx"):
            flags.parse_args([f"--model_dir={tmp_path}", "--exec_mode=evaluate", *fold])


def test_readme_names_every_flag():
    with open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    options = set(re.findall(r"(--\w[\w-]*)", flags.build_parser().format_help())) - {"--help"}
    assert len(options) > 30
    assert sorted(option for option in options if f"`{option}`" not in readme) == []


def test_common_names_are_aliases(tmp_path):
    args = flags.parse_args(["--mode=train_and_evaluate", "--data_path=/d", f"--model_dir={tmp_path}",
                             "--crossvalidation_idx=0", "--resume=False", "--max_steps=5", "--log_every=2",
                             "--checkpoint_every=3", "--batch_size=2"])
    assert (args.mode, args.data_path, args.resume, args.max_steps, args.log_every,
            args.checkpoint_every, args.batch_size) == ("train_and_evaluate", "/d", False, 5, 2, 3, 2)
    assert flags.parse_args(["--resume"]).resume is True
    assert flags.parse_args(["--resume_training"]).resume is True  # NVIDIA's spelling
    assert flags.parse_args([]).resume is None  # every model's default: refuse to train over a checkpoint


@pytest.mark.parametrize("name", ["model_dir", "log_dir"])
def test_run_folders_that_are_files_are_refused(tmp_path, name):
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(UserError) as error:
        flags.parse_args([f"--{name}={path}"])
    assert str(error.value) == f"--{name}={path} is a file; expected a folder (it is created when missing)"
    with pytest.raises(UserError) as error:  # was a TensorFlow or os.makedirs traceback after the set-up
        flags.parse_args([f"--{name}={path}/run/0"])
    assert str(error.value) == f"--{name}={path}/run/0: {path} is a file, so the folder cannot be created"


def test_resume_takes_the_run_and_refuses_another_fold(tmp_path, capsys):
    _training_run(tmp_path, "--base_filters=4", "--crossvalidation_idx=0", "--seed=3")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-5"\n')
    args = flags.parse_args([f"--model_dir={tmp_path}", "--resume"])
    assert (args.base_filters, args.crossvalidation_idx, args.seed) == (4, 0, 3)
    assert f"[flags] from {tmp_path}/config.json: --base_filters=4" in capsys.readouterr().out
    for flag, used in (("--crossvalidation_idx=3", "--crossvalidation_idx=0"), ("--seed=1", "--seed=3"),
                       ("--n_classes=3", "--n_classes=2")):
        with pytest.raises(UserError) as error:
            flags.parse_args([f"--model_dir={tmp_path}", "--resume", flag])
        assert str(error.value).startswith(f"{flag} contradicts the training run in {tmp_path}/config.json, "
                                           f"which used {used} (a resumed run continues")
    # --resume=False starts a new run: nothing is taken or refused.
    assert flags.parse_args([f"--model_dir={tmp_path}", "--resume=False", "--seed=1"]).seed == 1


@pytest.mark.subprocess
def test_help_answers_at_once_and_a_lone_directory_says_what_it_needs(tmp_path):
    # --help loads no TensorFlow, which makes it answer at once (tests/test_training.py checks the imports;
    # no duration is asserted).
    result = processes.run([sys.executable, "main.py", "--help"], cwd=MODEL_DIR, capture_output=True, text=True,
                           timeout=120)
    assert result.returncode == 0 and "--data_path DATA_PATH, --data_dir DATA_PATH" in result.stdout
    # The model directory alone, as ModelZoo hands it out: one line, exit 2.
    lone = tmp_path / "UNet_Medical_for_TensorFlow"
    shutil.copytree(MODEL_DIR, lone, ignore=shutil.ignore_patterns("tests", "test", ".pytest_cache", "__pycache__"))
    result = processes.run([sys.executable, "main.py", "--help"], cwd=lone, capture_output=True, text=True,
                           timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"error: {lone} needs the repository's common/ folder beside it ({tmp_path / 'common'}); "
                             "copy the model directory with it\n")


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
@pytest.mark.subprocess
def test_a_seed_outside_numpys_range_is_one_line_and_exit_2(seed):
    result = processes.run([sys.executable, "main.py", "--seed", seed], cwd=MODEL_DIR, capture_output=True,
                           text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --seed={seed} must be in 0..4294967295 (NumPy's seed range)"]


def test_a_resize_run_is_evaluated_and_predicted_at_its_own_scale(tmp_path):
    """resize: the tile size sets the scale of the slices, so evaluate/predict refuse another one; overlap tiles
    keep taking any valid size, and a --benchmark (random tiles) any size too."""
    _training_run(tmp_path / "resize", "--crossvalidation_idx=2", "--input_mode=resize", "--tile_size=316")
    for mode in ("evaluate", "predict"):
        with pytest.raises(UserError) as error:
            flags.parse_args([f"--model_dir={tmp_path / 'resize'}", f"--exec_mode={mode}", "--tile_size=252"])
        assert str(error.value) == (
            f"--tile_size=252 contradicts the training run in {tmp_path / 'resize'}/config.json, which resized every "
            "slice to the output of --tile_size=316 (--input_mode=resize: another tile size shows the network another "
            "scale); leave --tile_size out")
        assert flags.parse_args([f"--model_dir={tmp_path / 'resize'}", f"--exec_mode={mode}",
                                 "--tile_size=316"]).tile_size == 316
    assert flags.parse_args([f"--model_dir={tmp_path / 'resize'}", "--exec_mode=evaluate", "--benchmark",
                             "--tile_size=252"]).tile_size == 252
    _training_run(tmp_path / "tiles", "--crossvalidation_idx=2", "--tile_size=316")
    assert flags.parse_args([f"--model_dir={tmp_path / 'tiles'}", "--exec_mode=evaluate",
                             "--tile_size=252"]).tile_size == 252
