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
"""The training run, in the skeleton every model's runtime/training.py shares.

``main.py`` calls :func:`build` (the network and its Adam optimizer for every
mode; for a training also its plan in steps and the run folder's
checkpoints: a :class:`TrainState`), then for a training
:func:`restore_or_start` (resume, start over or fine-tune, then config.json)
and :func:`train` (the loop, one epoch's patches at a time from the step it
left off), which calls :func:`end_step` after each step and :func:`finish`
at its end (the last validation, the speed METRIC lines). The step cap, the
non-finite loss stop, the checkpoint cadence, the epoch-end saves and the
scratch clean-up are common/TrainingSteps', the same in every model.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

import tensorflow as tf

from common import npu_utils, stack
from common.checkpoints import (RunCheckpoints, TrainingSteps, broadcast_start, load_portable_weights,
                                portable_weights_path, step_cap)
from common.errors import UserError
from common.stack import keras
from data_loading.nifti import load_case
from data_loading.patches import patch_dataset, steps_per_epoch as epoch_steps
from model import tf_models
from model.weights import BEST_FOLDER, load_weights
from runtime import flags, metrics
from runtime.evaluation import Validation

if TYPE_CHECKING:  # for the hints only
    from data_loading.run_data import RunData


@dataclasses.dataclass
class TrainState:
    """What the parts of training share: the network, the checkpoint, the plan in steps and where the run stands."""

    args: object
    ctx: object
    model: object
    optimizer: object
    data: object  # data_loading.run_data.RunData
    log: object  # print, or a test's collector of lines
    checkpoint: object = None  # tf.train.Checkpoint of model, optimizer and step (training only)
    checkpoints: object = None  # RunCheckpoints of <model_dir>/checkpoints; None in --benchmark runs
    cases: list = None  # this rank's training cases
    steps_per_epoch: int = 0
    total_steps: int = 0
    step: int = 0  # steps done, counting those of the run this one continues
    validate: object = None  # a Validation with --val_cases, else None
    steps: object = None  # TrainingSteps of the run (restore_or_start)
    timer: object = None  # npu_utils.StepTimer of this process's steps
    first_step: int = 0  # the step this process started from
    first_step_sec: float = None  # the timer's elapsed() after this run's first step (graph tracing)


def build(args: argparse.Namespace, ctx: npu_utils.RunContext, data: RunData,
          log: Callable[[str], object] = print) -> TrainState:
    """The :class:`TrainState` of a run: the model and its Adam optimizer (variables built, so checkpoints
    restore them at once); for a training also its plan in steps and the run folder's checkpoints (none
    in a --benchmark run).

    Raises:
      UserError: fewer training cases than ranks.
    """
    with ctx.strategy.scope():
        model = tf_models.build_model(args.model_name, width_multiplier=args.width_multiplier)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
        stack.build_optimizer(optimizer, model.trainable_variables)
    state = TrainState(args=args, ctx=ctx, model=model, optimizer=optimizer, data=data, log=log)
    if not flags.trains(args):
        return state
    cases_per_rank = len(data.train_cases) // ctx.ranks.rank_size
    if cases_per_rank == 0:
        raise UserError(f"{len(data.train_cases)} training case(s) cannot feed RANK_SIZE={ctx.ranks.rank_size} ranks")
    state.steps_per_epoch = epoch_steps(cases_per_rank, args.tumour_centres + args.background_centres,
                                        args.batch_size, args.sampling)
    state.total_steps = step_cap(args.max_steps, args.train_epochs, state.steps_per_epoch)
    state.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                           step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"))
    state.checkpoints = None if args.benchmark else RunCheckpoints(
        state.checkpoint, model, args.model_dir, ctx, keep=args.keep_checkpoints)
    state.cases = ctx.shard(data.train_cases)
    return state


def restore_or_start(state: TrainState) -> None:
    """Continue the run from its checkpoint, start it over, or start it fresh; then write config.json.

    --resume (-c) applies the rules of ``RunCheckpoints``: True
    restores weights, optimizer state and step from the newest checkpoint in
    ``<model_dir>/checkpoints`` on every rank (a fresh start when there is
    none); False deletes those checkpoints and starts over; not given, a
    folder with a checkpoint is refused. A fresh start takes -lp's weights and
    drops an earlier run's best validation weights (``<model_dir>/best``).
    Every rank then takes rank 0's variables, and the chief writes
    ``<model_dir>/config.json`` (not in a --benchmark run, which neither
    reads nor writes checkpoints).

    Raises:
      UserError: a checkpoint is there and --resume is not given, or a checkpoint does not fit.
    """
    args, ctx, model, log = state.args, state.ctx, state.model, state.log
    checkpoints = state.checkpoints
    restored = checkpoints.restore_or_start(args.resume, log) if checkpoints else None
    if restored and args.load_path:
        log(f"[train] -lp {args.load_path} not used: --resume continues this run's own checkpoint")
    elif args.load_path:
        log(f"[train] initial weights from {load_weights(model, args.load_path)}")
    if checkpoints and restored is None and ctx.is_chief:
        # An earlier run's best weights would otherwise be tested in place of this run's.
        shutil.rmtree(os.path.join(args.model_dir, BEST_FOLDER), ignore_errors=True)
    broadcast_start(ctx, model, state.optimizer, [state.checkpoint.step])
    state.step = state.first_step = int(state.checkpoint.step)
    if state.data.val_cases and checkpoints:
        state.validate = Validation(args, model, state.data.val_cases, state.data.image_paths, log)
    state.steps = TrainingSteps(checkpoints, args.checkpoint_every, state.step, state.total_steps)
    if checkpoints and ctx.is_chief:
        flags.write_run_config(args, ctx)


def train(state: TrainState) -> keras.Model:
    """Train on this rank's share of the training cases to the step cap; returns the model to test.

    Every epoch samples --tumour_centres + --background_centres patches per
    case, its case order and patch centres a function of --seed and the epoch
    alone, so a continued run sees the patches the interrupted one would
    have. Checkpoints go to ``<model_dir>/checkpoints`` every
    --checkpoint_every steps and at each epoch's end, the newest
    --keep_checkpoints kept, every rank saving (not in --benchmark runs).
    Prints TRAIN lines (wall-clock speed, input pipeline included:
    npu_utils.StepTimer) and the METRIC lines patches_per_sec and voxels_per_sec.

    Raises:
      TrainingDiverged: a non-finite loss or weights; the last good checkpoint stays the latest.
    """
    args, ctx, model = state.args, state.ctx, state.model
    try:
        state.log(f"[train] {args.model_name}: {len(state.cases)} cases on this rank, {state.steps_per_epoch} steps "
                  f"per epoch, steps {state.step} -> {state.total_steps}, batch {args.batch_size} x "
                  f"{ctx.ranks.rank_size} rank(s)")
        train_step = npu_utils.make_train_step(ctx, model, state.optimizer, metrics.make_loss_fn(model))
        state.timer = npu_utils.StepTimer(args.batch_size * ctx.ranks.rank_size, first_step=state.step)
        while state.step < state.total_steps:
            for images, labels in _epoch_batches(state):
                end_step(state, float(train_step(images, labels)))
                if state.step >= state.total_steps:
                    break
            # Each epoch's end (or the run's) is a checkpoint too; every rank decides alike (each saves).
            state.steps.save(state.step)
        finish(state)
    finally:
        state.steps.close()
    if ctx.multi_worker and ctx.is_chief and state.checkpoints:
        # Reading a per-worker BN statistic (Keras 2) is a collective, which the chief's test cannot run
        # once the other ranks have finished: it tests a copy outside the strategy, from the last checkpoint.
        model = tf_models.build_model(args.model_name, width_multiplier=args.width_multiplier)
        load_portable_weights(model, portable_weights_path(state.checkpoints.latest))
    return model


def end_step(state: TrainState, loss: float) -> None:
    """The bookkeeping of the step just run (``loss``: its float loss): the non-finite check and the
    checkpoint cadence (TrainingSteps), the TRAIN line, the validation every --eval_every steps.

    Raises:
      TrainingDiverged: ``loss`` is not finite; nothing is saved after it.
    """
    args = state.args
    state.steps.check_loss(state.step + 1, loss)
    state.step += 1
    state.checkpoint.step.assign(state.step)
    if state.first_step_sec is None or state.step % args.log_every == 0 or state.step == state.total_steps:
        print(state.timer.line(state.step, loss), flush=True)
        state.first_step_sec = state.first_step_sec or state.timer.elapsed()
    state.steps.end_step(state.step)
    if state.validate and state.step % args.eval_every == 0:
        state.validate(state.step)


def finish(state: TrainState) -> None:

    """The end of the run: the last validation (unless the last step had one), the speed METRIC lines."""
    args, timer = state.args, state.timer
    steps_run = state.step - state.first_step
    if state.validate and steps_run and state.step % args.eval_every != 0:
        state.validate(state.step)
    if steps_run:
        # After the first step (graph tracing) when there are others.
        timed_steps, timed_sec = ((steps_run - 1, timer.elapsed() - state.first_step_sec) if steps_run > 1
                                  else (1, timer.elapsed()))
        global_batch = args.batch_size * state.ctx.ranks.rank_size
        patches_per_sec = global_batch * timed_steps / max(timed_sec, 1e-9)
        print(npu_utils.format_metric_line("patches_per_sec", patches_per_sec))
        print(npu_utils.format_metric_line("voxels_per_sec", patches_per_sec * args.label_size ** 3))
    state.log(f"[train] done at step {state.step} in {timer.elapsed():.1f} s")


def _epoch_batches(state):
    """The rest of the current epoch's batches (from ``state.step``): its case order and patch centres a
    function of --seed and the epoch alone."""
    args = state.args
    epoch = state.step // state.steps_per_epoch

    def load_fn(index):
        case = state.cases[index]
        loaded = load_case(case, state.data.image_paths[case.case_id], normalisation=args.normalisation)
        return loaded.image, loaded.label, loaded.background

    return patch_dataset(
        load_fn, len(state.cases), num_tumour=args.tumour_centres, num_background=args.background_centres,
        patch_size=(args.patch_width, args.patch_height, args.patch_depth), label_size=(args.label_size,) * 3,
        batch_size=args.batch_size, seed=args.seed, epoch=epoch, sampling=args.sampling,
    ).take(state.steps_per_epoch).skip(state.step % state.steps_per_epoch)
