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
"""NVIDIA's TF2 UNet_Medical commands (README and examples/*.sh) run as written, at a tiny width."""

import json
import os
import re

import pytest

from common.errors import UserError
from runtime import flags
from test_training import metrics_of, run_main

TINY = ["--base_filters=4", "--tile_size=220"]  # the only additions to NVIDIA's commands...
# ...and, in training, this override: compiling the training step with XLA takes some 30 s on TF 2.6's
# CPU; what --xla means is checked by parsing, and the evaluate command keeps it.
NO_XLA = ["--xla=False"]


def test_nvidia_spellings_mean_nvidias_flags(tmp_path):
    args = flags.parse_args(["--exec_mode", "train_and_evaluate", "--fold", "2", "--xla", "--amp", "--augment",
                             "--no-augment", "--evaluate_every", "5", "--model_dir", str(tmp_path)])
    assert (args.crossvalidation_idx, args.fold_scheme, args.use_xla, args.use_amp, args.augment,
            args.evaluate_every) == (2, "nvidia", True, True, False, 5)
    # The repository's spelling keeps the repository's folds; an explicit scheme wins over --fold's.
    assert flags.parse_args(["--crossvalidation_idx=2"]).fold_scheme == "partition"
    assert flags.parse_args(["--fold=2", "--fold_scheme=partition"]).fold_scheme == "partition"
    with pytest.raises(UserError, match="name different folds"):
        flags.parse_args(["--fold=1", "--crossvalidation_idx=2"])
    with pytest.raises(UserError, match="--evaluate_every=5 needs --crossvalidation_idx or --fold"):
        flags.parse_args(["--evaluate_every=5"])
    os.mkdir(tmp_path / "x.json")
    with pytest.raises(UserError, match="is a folder"):
        flags.parse_args([f"--log_dir={tmp_path}/x.json"])


@pytest.mark.subprocess
def test_nvidia_train_single_then_evaluate_run_as_written(isbi_dir, tmp_path):
    """examples/unet_TRAIN_SINGLE.sh (6400 steps -> 4, batch 8 -> 2, with --evaluate_every 2), then the
    README's evaluate command (with --fold as examples/unet_INFER.sh spells it, --use_savedmodel, --use_tftrt)."""
    results = str(tmp_path / "results")
    os.makedirs(results)
    trained = run_main("--data_dir", isbi_dir, "--model_dir", results, "--log_every", "2", "--max_steps", "4",
                       "--batch_size", "2", "--exec_mode", "train_and_evaluate", "--fold", "0", "--augment",
                       "--xla", "--log_dir", f"{results}/log.json", "--evaluate_every", "2", *TINY, *NO_XLA)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert trained.stdout.count("METRIC eval_dice_score=") == 3  # steps 2 and 4, and the final evaluation
    with open(os.path.join(results, "config.json"), encoding="utf-8") as handle:
        assert json.load(handle)["fold_scheme"] == "nvidia"
    with open(f"{results}/log.json", encoding="utf-8") as handle:
        lines = [json.loads(line[len("DLLL "):]) for line in handle]
    assert {line["type"] for line in lines} == {"LOG"}
    assert [line["step"] for line in lines if "images_per_sec" in line["data"]] == [[2, 4], [4, 4]]
    assert "eval_dice_score" in lines[-1]["data"] and lines[-1]["step"] == []
    # The logged loss is NVIDIA's (cross-entropy + Dice, within 0..~2) with the L2 term beside it.
    train_lines = re.findall(r"^TRAIN step=\d+ loss=(\S+) .* l2_loss=(\S+)$", trained.stdout, re.M)
    assert len(train_lines) == 2 and all(0 < float(loss) < 3 and float(l2) > 0 for loss, l2 in train_lines)
    assert [line["data"]["l2_loss"] for line in lines if "l2_loss" in line["data"]] == [
        pytest.approx(float(l2), abs=1e-6) for _, l2 in train_lines]

    evaluated = run_main("--data_dir", isbi_dir, "--model_dir", results, "--batch_size", "1", "--exec_mode",
                         "evaluate", "--fold", "0", "--xla", "--amp", "--use_savedmodel", "--use_tftrt")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "TF-TRT is not part of this repository" in evaluated.stderr
    assert f"weights of {results}/unet" in evaluated.stdout
    metrics = metrics_of(evaluated.stdout)
    assert 0 < metrics["eval_dice_score"] <= 1 and metrics["eval_ce_loss"] > 0
    assert metrics["eval_dice_loss"] == pytest.approx(1 - metrics["eval_dice_score"], abs=2e-6)
    assert metrics["eval_total_loss"] == pytest.approx(metrics["eval_ce_loss"] + metrics["eval_dice_loss"], abs=2e-6)
