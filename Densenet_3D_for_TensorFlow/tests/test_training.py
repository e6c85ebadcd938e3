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
"""Training in-process on tiny synthetic cases: it learns, resumes with optimizer
state, refuses to overwrite a run, starts over on request, writes config.json
only once it is set to go, stops cleanly on a non-finite loss (exit 3) and
keeps --keep_checkpoints checkpoints."""

import json
import os
import shutil

import numpy as np
import pytest

import main
from common import checkpoints, cli, errors, npu_utils
from common.errors import UserError
from data_loading import run_data, split, synthetic
from model import tf_models, weights
from runtime import evaluation, flags, inference, training

# A tenth of dense24's widths and 30^3 patches (4^3 labelled centres): about
# 0.3 s per step of 4 patches on 2 cores. One block of 40^3 kept covers a synthetic case.
TINY = ["--width_multiplier", "0.1", "-ws", "30", "-hs", "30", "-cs", "30", "-ps", "4", "-bs", "4",
        "--tumour_centres", "20", "--background_centres", "20", "-nc", "False", "-lr", "0.003",
        "--log_every", "20", "--save_png", "False", "--block_size", "40"]


def _setup(root, model_dir, *extra):
    args = flags.parse_args(["-r", root, "--model_dir", str(model_dir), *TINY, *extra])
    ctx = npu_utils.setup_device(args, seed=args.seed)
    data = run_data.prepare_data(args, ctx, log=lambda line: None)
    state = training.build(args, ctx, data)
    return args, ctx, data, state.model, state


def _train(state, log):
    """main.py's training: restore or start, then the loop; returns the model to test."""
    state.log = log
    training.restore_or_start(state)
    return training.train(state)


def _mean_wt_dice(rows):
    return float(np.mean([row["wt_dice"] for row in rows]))


@pytest.mark.slow
def test_short_training_learns_and_resumes_with_optimizer_state(synthetic_root, tmp_path):
    # With N4: without it, the synthetic bias field (+-20-30%) makes the brain's
    # edge look like tumour to so small a network (measured WT Dice 0.18 after
    # 80 steps without N4, 0.63 with it).
    data_root = str(tmp_path / "data")
    shutil.copytree(synthetic_root, data_root)
    # zero_background: the reference's normalisation turns the air of these small volumes (69 % of their
    # voxels) into -3.5 to -5.2 and learns more slowly (measured WT Dice 0.25 after 100 steps, against 0.74 with
    # zero_background, both with the reference's sampling); its inputs are tested in test_inference.py.
    args, ctx, data, model, state = _setup(data_root, tmp_path / "run", "--mode", "train_test",
                                               "--max_steps", "100", "-nc", "True",
                                               "--normalisation", "zero_background")
    untrained = _mean_wt_dice(evaluation.test(args, model, data, trained_here=True, log=lambda line: None))
    traces = npu_utils.TRACES["train_step"]
    _train(state, lambda line: None)
    assert npu_utils.TRACES["train_step"] == traces + 1  # 100 steps of one fixed batch shape: one trace
    trained = _mean_wt_dice(evaluation.test(args, model, data, trained_here=True, log=lambda line: None))
    # Measured: about 0.2 untrained, 0.6 after 80 steps.
    assert trained > 0.45 and trained > untrained + 0.25, (untrained, trained)
    assert os.path.exists(os.path.join(args.save_path, f"{data.test_cases[0].case_id}.nii.gz"))

    # A second run in the same model_dir must not silently start over...
    args2, ctx2, data2, model2, state2 = _setup(data_root, tmp_path / "run", "--max_steps", "100",
                                                    "-nc", "True")
    with pytest.raises(UserError, match=r"already holds a checkpoint \(ckpt-100\): --resume=True continues"):
        _train(state2, lambda line: None)
    # ...and with -c it takes the weights and the optimizer's state from the last checkpoint.
    args3, ctx3, data3, model3, state3 = _setup(data_root, tmp_path / "run", "--max_steps", "100",
                                                    "-nc", "True", "-c", "True")
    lines = []
    _train(state3, lines.append)
    assert any(line.endswith("resumed from " + str(tmp_path / "run" / "checkpoints" / "ckpt-100"))
               for line in lines), lines
    assert int(state3.optimizer.iterations.numpy()) == 100
    for trained_weight, restored in zip(model.weights, model3.weights):
        np.testing.assert_array_equal(trained_weight.numpy(), restored.numpy())
    _check_run_config(data_root, tmp_path / "run")


def _check_run_config(data_root, run):
    """config.json of a trained run: written after the checks, read by test/predict/resume, kept on failure."""
    saved = json.loads((run / "config.json").read_text())
    assert (saved["model_name"], saved["width_multiplier"], saved["n4_correction"]) == ("dense24", 0.1, True)
    assert not list(run.glob("config_*.json"))
    taken = flags.parse_args(["-r", data_root, "--mode", "test", "--model_dir", str(run)])
    assert (taken.width_multiplier, taken.n4_correction) == (0.1, True)
    with pytest.raises(UserError, match=r"--width_multiplier=0.2 contradicts the training run in .*config.json, "
                                        r"which used --width_multiplier=0.1"):
        flags.parse_args(["-r", data_root, "--mode", "predict", "-lp", str(run / "checkpoints"),
                          "--width_multiplier", "0.2"])
    with pytest.raises(UserError, match="--model_name=dense48 contradicts"):
        flags.parse_args(["-r", data_root, "--model_dir", str(run), "-c", "True", "-mn", "dense48"])
    # A restore that fails leaves config.json as it was (THE RULE: written once the run is set to go).
    (run / "config.json").unlink()
    args, ctx, data, model, state = _setup(data_root, run, "-nc", "True", "-c", "True",
                                               "--width_multiplier", "0.2")
    with pytest.raises(UserError, match="ckpt-100 cannot be continued by this model: "):
        _train(state, lambda line: None)
    assert not (run / "config.json").exists()
    # --resume=False starts over: the old checkpoints go before the new run saves its own.
    args, ctx, data, model, state = _setup(data_root, run, "-nc", "True", "--resume=False")
    lines = []
    state.log = lines.append
    training.restore_or_start(state)
    assert state.step == 0 and state.checkpoints.latest is None
    assert any("starting over" in line for line in lines) and not list((run / "checkpoints").glob("ckpt-*"))


@pytest.mark.slow
def test_non_finite_loss_exits_3_without_saving_then_the_folder_is_refused(synthetic_root, tmp_path, capsys):
    # An absurd learning rate overflows the weights within a few steps.
    with pytest.raises(SystemExit) as exited:
        main.main(["-r", synthetic_root, "--model_dir", str(tmp_path), *TINY, "-lr", "1e30",
                   "--checkpoint_every", "1", "--keep_checkpoints", "1", "--max_steps", "20"])
    assert exited.value.code == errors.DIVERGED_EXIT == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "finite" in error
    latest = checkpoints.latest_checkpoint(str(tmp_path))
    assert latest is not None and latest in error
    # --keep_checkpoints=1: of one checkpoint per step, only the last good one stays.
    assert [p.name for p in (tmp_path / "checkpoints").glob("ckpt-*.index")] == [os.path.basename(latest) + ".index"]
    # The same command again, without --resume, on a folder that holds a checkpoint: one line, exit 2.
    with pytest.raises(SystemExit) as exited:
        main.main(["-r", synthetic_root, "--model_dir", str(tmp_path), *TINY, "--max_steps", "20"])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"error: --model_dir={tmp_path} already holds a checkpoint (")
    import tensorflow as tf
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        if name.startswith("model/"):
            value = reader.get_tensor(name)
            assert not np.issubdtype(np.asarray(value).dtype, np.floating) or np.isfinite(value).all(), name


def test_flag_checks():
    base = ["-r", "."]
    assert flags.parse_args(base + ["-nc", "False"]).n4_correction is False
    assert flags.parse_args(base).n4_correction is True
    assert flags.parse_args(base + ["-mn", "dense24_nocorrection"]).n4_correction is False
    assert flags.parse_args(base + ["-mn", "no-dense"]).model_name == "no_dense"
    assert flags.parse_args(base + ["-c", "False"]).resume is False
    assert flags.parse_args(base).resume is None  # not given: a folder with checkpoints is refused
    with pytest.raises(UserError, match="dense24_nocorrection"):
        flags.parse_args(base + ["-mn", "dense24_nocorrection", "-nc", "True"])
    with pytest.raises(UserError, match="-ws=40 and -ps=12"):
        flags.parse_args(base + ["-ws", "40"])
    assert flags.parse_args(base + ["--benchmark"]).max_steps == 20


def test_fine_tuning_refuses_weights_trained_with_another_n4_setting(tmp_path):
    cli.write_run_config(str(tmp_path / "source"), {"model_name": "dense24", "n4_correction": True})
    (tmp_path / "source" / "checkpoints").mkdir()
    for name in ("checkpoint", "ckpt-100.index"):  # -lp must name a checkpoint (flags._check_sources)
        (tmp_path / "source" / "checkpoints" / name).write_text("")
    for load_path in (tmp_path / "source", tmp_path / "source" / "checkpoints" / "ckpt-100"):
        with pytest.raises(UserError, match=rf"^-lp {load_path}: its run used -nc True \({tmp_path}/source/"
                                            r"config.json\), this run -nc False: fine-tune with the N4 setting"):
            flags.parse_args(["-r", ".", "-lp", str(load_path), "-nc", "False"])
        assert flags.parse_args(["-r", ".", "-lp", str(load_path)]).n4_correction is True


def test_benchmark_says_which_inference_flags_it_does_not_use(capsys):
    flags.parse_args(["-r", ".", "--benchmark", "--inference=window", "--block_size=48", "--seed=3"])
    assert capsys.readouterr().out == ("[flags] --inference --block_size not used: --benchmark times training "
                                       "only, without a test\n")
    flags.parse_args(["-r", ".", "--inference=window"])
    assert capsys.readouterr().out == ""


def test_weights_of_another_width_stop_with_one_line(tmp_path):
    import tensorflow as tf

    prefix = tf.train.Checkpoint(model=tf_models.build_model("dense24", 0.1)).save(
        str(tmp_path / "checkpoints" / "ckpt"))
    narrow = tf_models.build_model("dense24", 0.1)
    assert weights.load_weights(narrow, str(tmp_path)) == prefix
    with pytest.raises(UserError, match=r"-lp .*ckpt-1: does not fit -mn dense24 \(--width_multiplier too\?\)"):
        weights.load_weights(tf_models.build_model("dense24", 0.2), prefix)


def test_common_names_are_aliases_of_the_reference_flags():
    common = flags.parse_args(["--data_path", "d", "--mode", "train", "--model_dir", "m", "--batch_size", "3",
                               "--max_steps", "7", "--log_every", "5", "--checkpoint_every", "9",
                               "--resume=True"])
    reference = flags.parse_args(["-r", "d", "--model_dir", "m", "-bs", "3", "--max_steps", "7",
                                  "--log_every_steps", "5", "--save_every_steps", "9", "-c", "True"])
    assert vars(common) == vars(reference)
    assert common.resume is True and common.log_every == 5 and common.checkpoint_every == 9
    assert flags.parse_args(["-r", "d", "--resume"]).resume is True
    assert flags.parse_args(["-r", "d", "--resume=False"]).resume is False


@pytest.mark.slow
def test_brats_2021_and_2023_folders_train_and_predict_in_their_own_label_convention(tmp_path):
    import nibabel as nib

    tiny = [*TINY, "--max_steps", "2", "-bs", "2", "--tumour_centres", "1", "--background_centres", "1"]
    for scheme in ("2021", "2023"):
        data, run = tmp_path / scheme, tmp_path / f"run{scheme}"
        synthetic.write_dataset(str(data), 3, (30, 30, 30), seed=1, scheme=scheme)
        assert main.main(["-r", str(data), "--model_dir", str(run), "--mode", "train_test", *tiny]) == 0
        assert main.main(["-r", str(data), "--model_dir", str(run), "--mode", "predict", "-sp", str(tmp_path / "p"),
                          "--save_png", "False"]) == 0
        predicted = sorted((tmp_path / "p").glob("*.nii.gz"))
        assert [p.name for p in predicted] == [f"{c}.nii.gz" for c in sorted(os.listdir(data))]
        values = set(np.unique(np.asanyarray(nib.load(predicted[0]).dataobj)).tolist())
        assert values <= ({0, 1, 2, 3} if scheme == "2023" else {0, 1, 2, 4}), values
        shutil.rmtree(tmp_path / "p")


@pytest.mark.slow
def test_validation_cases_are_scored_and_the_best_weights_tested(synthetic_root, tmp_path, capsys):
    run = tmp_path / "run"
    args, ctx, data, model, state = _setup(synthetic_root, run, "--mode", "train_test", "--max_steps", "3",
                                               "--val_cases", "1", "--eval_every", "2")
    val_ids = [case.case_id for case in data.val_cases]
    assert len(val_ids) == 1 and val_ids[0] not in {case.case_id for case in data.train_cases}
    assert len(data.train_cases) == 3  # 4 of the 5 cases train, one of them now validates
    lines = []
    traces = npu_utils.TRACES["validate"]
    model = _train(state, lines.append)
    assert npu_utils.TRACES["validate"] == traces + 1  # two validations, one predict function
    scored = [line for line in lines if line.startswith("[val]")]
    # Every --eval_every steps and at the end; each says the Dice of every region.
    assert [line.split(":")[0] for line in scored] == ["[val] step 2", "[val] step 3"], lines
    assert all(" WT " in line and " TC " in line and " ET " in line for line in scored)
    import tensorflow as tf

    # The same figures for TensorBoard, at the same steps.
    events = run / evaluation.VALIDATION_EVENTS
    tags = {(value.tag, event.step) for name in os.listdir(events)
            for event in tf.compat.v1.train.summary_iterator(str(events / name)) for value in event.summary.value}
    assert tags == {(f"val_dice_{name}", step) for name in ("wt", "tc", "et", "mean") for step in (2, 3)}
    prefix, record = weights.read_best(str(run))
    assert record["checkpoint"] == f"ckpt-{record['step']}" and os.path.isfile(prefix + ".weights.npz")
    assert f"the best so far: {prefix}" in scored[record["step"] - 2]
    assert os.path.isfile(os.path.join(run, "checkpoints", "ckpt-3.index"))  # the last stays beside it
    # What the test phase of --mode train_test (train_and_evaluate) loads and says (evaluation.test first).
    capsys.readouterr()
    inference.restore_for_inference(args, model, trained_here=True)
    said = capsys.readouterr().out
    assert f"[train_and_evaluate] weights: the best validation, {prefix} (step {record['step']}" in said
    args.test_weights = "last"
    inference.restore_for_inference(args, model, trained_here=True)
    assert "[train_and_evaluate] weights: this training's last step" in capsys.readouterr().out


def test_validation_subset_from_a_count_or_a_file(tmp_path):
    train_ids = [f"case{i}" for i in range(6)]
    two = split.validation_subset(train_ids, "2", seed=1)
    assert len(two) == 2 and two == split.validation_subset(train_ids, "2", seed=1)
    assert split.validation_subset(train_ids, "0", seed=1) == []
    listed = tmp_path / "val.txt"
    listed.write_text("case4\ncase1")
    assert split.validation_subset(train_ids, str(listed), seed=1) == ["case1", "case4"]  # the list's order
    listed.write_text("case1\nother")
    with pytest.raises(UserError, match=r"val\.txt: 1 case\(s\) not in the training list \(other\)"):
        split.validation_subset(train_ids, str(listed), seed=1)
    with pytest.raises(UserError, match="6 validation case"):
        split.validation_subset(train_ids, "7", seed=1)
    with pytest.raises(UserError, match="expected a number of cases or a file"):
        split.validation_subset(train_ids, "missing.txt", seed=1)
