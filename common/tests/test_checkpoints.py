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
"""Tests of common/checkpoints.py: portable weights beside each checkpoint, and run folders that
cross between TF 2.6.5 / Keras 2.6 and TF 2.21 / Keras 3 (the other side in the other venv)."""

import os
import sys
import textwrap

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)
from common import checkpoints, cli, errors, stack  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.tests import processes  # noqa: E402
from common.tests.stacks import other_stack_python  # noqa: E402

# A conv / BatchNorm / dense model with a nested model, built the same way on both stacks.
BUILD = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    from common import checkpoints, stack
    from common.stack import keras

    def build(width=4):
        inner = keras.Sequential([keras.Input((8, 8, width)), keras.layers.Conv2D(width, 3, name="inner_conv"),
                                  keras.layers.BatchNormalization(name="inner_bn")], name="inner")
        inputs = keras.Input((8, 8, 1), name="image")
        x = keras.layers.Conv2D(width, 1, name="stem")(inputs)
        x = inner(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="toy")

    def train_and_save(folder, steps=3):
        stack.set_random_seed(1)
        model, optimizer = build(), keras.optimizers.Adam(0.01)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=2)
        x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
        for step in range(1, steps + 1):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True)))
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            checkpoints.save_checkpoint(manager, model, step)
        return model, manager.latest_checkpoint
""")


@pytest.fixture(scope="module")
def toy():
    namespace = {}
    exec(BUILD, namespace)  # noqa: S102 - the same source runs in the other stack's subprocess
    return namespace


def test_each_checkpoint_has_its_portable_weights_and_deleted_ones_lose_theirs(toy, tmp_path):
    toy["train_and_save"](str(tmp_path), steps=3)
    names = sorted(os.listdir(tmp_path))
    assert [n for n in names if n.endswith(".weights.npz")] == ["ckpt-2.weights.npz", "ckpt-3.weights.npz"]
    assert not [n for n in names if n.endswith(".tmp")]


def test_portable_weights_round_trip_and_bad_files_are_one_line(toy, tmp_path):
    model, prefix = toy["train_and_save"](str(tmp_path))
    fresh = toy["build"]()
    checkpoints.load_portable_weights(fresh, checkpoints.portable_weights_path(prefix))
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match=r"stem/0 has shape \(1, 1, 1, 8\), this model.s has \(1, 1, 1, 4\)"):
        wider = toy["build"](width=8)
        checkpoints.save_portable_weights(wider, str(tmp_path / "wide.npz"))
        checkpoints.load_portable_weights(toy["build"](), str(tmp_path / "wide.npz"))
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="broken.npz: cannot be read as a weights file"):
        checkpoints.load_portable_weights(fresh, str(tmp_path / "broken.npz"))


@pytest.mark.subprocess
def test_a_checkpoint_of_the_other_stack_gives_its_weights_and_refuses_a_resume(toy, tmp_path):
    script = BUILD + textwrap.dedent(f"""
        model, prefix = train_and_save({str(tmp_path)!r})
        np.save({str(tmp_path / "expected.npy")!r}, np.concatenate([w.ravel() for w in model.get_weights()]))
        print("PREFIX", prefix, stack.STACK)
    """)
    result = processes.run([other_stack_python(), "-c", script], capture_output=True, text=True, timeout=300,
                           cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-2000:]
    prefix, their_stack = result.stdout.split("PREFIX ")[1].split(" ", 1)
    assert their_stack.strip() != stack.STACK
    import tensorflow as tf
    keras = stack.keras
    model = toy["build"]()
    assert checkpoints.restore_checkpoint(tf.train.Checkpoint(model=model), prefix, partial=True, model=model) is None
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in model.get_weights()]),
                                  np.load(tmp_path / "expected.npy"))
    error = checkpoints.restore_checkpoint(tf.train.Checkpoint(model=model, optimizer=keras.optimizers.Adam()), prefix)
    assert error.startswith(f"written on {their_stack.strip()}, this is {stack.STACK}") and "\n" not in error


def _run(toy, run_dir, rank=0):
    """A RunCheckpoints over the toy model (keep 2) as worker ``rank`` of a run."""
    import tensorflow as tf
    model = toy["build"]()
    step = tf.Variable(0, dtype=tf.int64)
    ctx = type("Ctx", (), {"is_chief": rank == 0, "ranks": type("Ranks", (), {"rank_id": rank})})()
    return checkpoints.RunCheckpoints(tf.train.Checkpoint(model=model, step=step), model, str(run_dir), ctx,
                                      keep=2), step


def test_run_checkpoints_resume_start_over_refuse_and_keep(toy, tmp_path):
    run, step = _run(toy, tmp_path)
    assert run.restore_or_start(None) is None  # an empty folder starts fresh whatever --resume says
    for number in (1, 2, 3):
        step.assign(number)
        run.save(number)
    assert sorted(p for p in os.listdir(tmp_path / "checkpoints") if p.endswith(".index")) == \
        ["ckpt-2.index", "ckpt-3.index"]
    with pytest.raises(UserError, match="already holds a checkpoint.*--resume=True continues"):
        _run(toy, tmp_path)[0].restore_or_start(None)
    again, again_step = _run(toy, tmp_path)
    assert again.restore_or_start(True).endswith("ckpt-3") and int(again_step) == 3
    fresh, fresh_step = _run(toy, tmp_path)
    assert fresh.restore_or_start(False) is None and int(fresh_step) == 0
    assert checkpoints.latest_checkpoint(str(tmp_path)) is None
    assert not [p for p in os.listdir(tmp_path / "checkpoints") if p.startswith("ckpt-")]


def test_run_checkpoints_refuse_non_finite_weights_and_damaged_lists(toy, tmp_path):
    run, _ = _run(toy, tmp_path)
    run.save(1)
    run.model.trainable_variables[0].assign(run.model.trainable_variables[0] * np.nan)
    with pytest.raises(errors.TrainingDiverged, match="not finite at step 2.*ckpt-1"):
        run.save(2)
    assert checkpoints.latest_checkpoint(str(tmp_path)).endswith("ckpt-1")
    os.remove(tmp_path / "checkpoints" / "ckpt-1.index")
    with pytest.raises(UserError, match=r"checkpoint list names .*ckpt-1, whose \.index file is missing"):
        checkpoints.latest_checkpoint(str(tmp_path))
    assert _run(toy, tmp_path)[0].restore_or_start(False) is None  # starting over needs no readable list
    assert not cli.has_checkpoint(str(tmp_path))


def test_portable_weights_half_written_by_a_killed_run_are_removed_at_the_next_start(toy, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".weights-abc123.tmp").write_bytes(b"half")
    _run(toy, tmp_path)
    assert os.listdir(tmp_path / "checkpoints") == []


def test_a_non_chief_worker_saves_into_its_own_scratch_folder_which_close_removes(toy, tmp_path):
    worker, _ = _run(toy, tmp_path, rank=1)
    assert worker.save(1).startswith(str(tmp_path / "checkpoints" / ".worker-1"))
    assert checkpoints.latest_checkpoint(str(tmp_path)) is None  # the run folder's list is the chief's alone
    worker.close()
    assert not os.path.exists(tmp_path / "checkpoints" / ".worker-1")


def test_step_cap_is_the_first_cap_reached():
    assert checkpoints.step_cap(0, 3, 10) == 30 and checkpoints.step_cap(25, 3, 10) == 25
    assert checkpoints.step_cap(100, 0, 10) == 100 and checkpoints.step_cap(100, 2, 10) == 20
    with pytest.raises(ValueError):
        checkpoints.step_cap(0, 0, 10)


def test_training_steps_save_at_the_cadence_and_the_end_never_twice_and_stop_on_a_non_finite_loss(toy, tmp_path):
    run, step = _run(toy, tmp_path)
    steps = checkpoints.TrainingSteps(run, checkpoint_every=2, first_step=0, last_step=5)
    for number in range(1, 6):
        step.assign(number)
        steps.end_step(number, loss=0.5 if number % 2 else None)  # a loop that reads the loss every other step
    assert steps.save(4) is None  # the cadence wrote it
    assert steps.save(5).endswith("ckpt-5") and steps.save(5) is None
    assert sorted(p for p in os.listdir(tmp_path / "checkpoints") if p.endswith(".index")) == \
        ["ckpt-4.index", "ckpt-5.index"]
    with pytest.raises(errors.TrainingDiverged) as stop:
        steps.end_step(6, loss=float("nan"))
    assert str(stop.value) == ("non-finite loss nan at step 6: training stopped without saving; the last good "
                               f"checkpoint stays: {tmp_path}/checkpoints/ckpt-5")
    resumed = checkpoints.TrainingSteps(run, checkpoint_every=2, first_step=5, last_step=5)
    assert resumed.save(5) is None  # a resumed run that has nothing left to train writes nothing again


def test_training_steps_of_a_benchmark_write_nothing_and_a_worker_removes_its_scratch_folder(toy, tmp_path):
    bench = checkpoints.TrainingSteps(None, checkpoint_every=1, first_step=0, last_step=2)
    bench.end_step(1, loss=1.0)
    assert bench.save(2) is None and bench.latest is None and not os.listdir(tmp_path)
    with pytest.raises(errors.TrainingDiverged, match="stays: none$"):
        bench.check_loss(2, float("inf"))
    worker, _ = _run(toy, tmp_path, rank=1)
    steps = checkpoints.TrainingSteps(worker, checkpoint_every=1, first_step=0, last_step=1)
    steps.end_step(1, loss=1.0)
    assert os.path.isdir(tmp_path / "checkpoints" / ".worker-1")
    steps.close()
    assert not os.path.exists(tmp_path / "checkpoints" / ".worker-1")
