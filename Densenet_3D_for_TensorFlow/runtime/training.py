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
"""Training: the device set-up, the network and its optimizer, and the training loop with checkpoints.

``main.py`` calls :func:`setup`, then ``data_loading.run_data.prepare_data``,
:func:`build_network` and :func:`train` (then ``runtime.evaluation.test`` or
``runtime.inference.predict``). Training is three parts:
:func:`restore_or_start` (resume, start over or fine-tune), the loop in
:func:`train`, and :func:`train_epoch` (one epoch's patches from the step it
left off).
"""

import dataclasses
import math
import os
import shutil

import tensorflow as tf

from common import npu_utils
from common.npu_utils import TrainingDiverged, UserError, keras
from data_loading.nifti import load_case
from data_loading.patches import patch_dataset, steps_per_epoch as epoch_steps
from model import tf_models
from model.weights import BEST_FOLDER, load_weights
from runtime import flags, metrics
from runtime.evaluation import Validation


def setup(args):
    """The device, precision and ranks (common/npu_utils), and one seed for NumPy, Python and TensorFlow."""
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu  # as the reference's -gpu
    ctx = npu_utils.setup_device(args)
    if args.gpu is not None and ctx.device != "gpu":
        print(f"[device] -gpu {args.gpu} has no effect on {ctx.device.upper()}", flush=True)
    npu_utils.set_random_seed(args.seed)
    return ctx


def build_network(args, ctx):
    """The model and its Adam optimizer (variables built, so checkpoints restore them at once)."""
    with ctx.strategy.scope():
        model = tf_models.build_model(args.model_name, width_multiplier=args.width_multiplier)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
        npu_utils.build_optimizer(optimizer, model.trainable_variables)
    return model, optimizer


@dataclasses.dataclass
class TrainState:
    """What the parts of training share: the checkpoint, the plan in steps and where the run stands."""

    args: object
    ctx: object
    model: object
    checkpoint: object  # tf.train.Checkpoint of model, optimizer and step
    checkpoints: object  # npu_utils.RunCheckpoints of <model_dir>/checkpoints; None in --benchmark runs
    cases: list  # this rank's training cases
    image_paths: dict  # case_id -> {modality: path} or None (RunData.image_paths)
    steps_per_epoch: int
    total_steps: int
    step: int = 0  # steps done, counting those of the run this one continues
    validate: object = None  # a Validation with --val_cases, else None
    first_step_sec: float = None  # the timer's elapsed() after this run's first step (graph tracing)


def restore_or_start(args, ctx, model, optimizer, data, log=print):
    """The :class:`TrainState` of a run: continued from its checkpoint, started over, or fresh.

    --resume (-c) applies the rules of ``npu_utils.RunCheckpoints``: True
    restores weights, optimizer state and step from the newest checkpoint in
    ``<model_dir>/checkpoints`` on every rank (a fresh start when there is
    none); False deletes those checkpoints and starts over; not given, a
    folder with a checkpoint is refused. A fresh start takes -lp's weights and
    drops an earlier run's best validation weights (``<model_dir>/best``).
    A --benchmark run neither reads nor writes checkpoints.

    Raises:
      UserError: a checkpoint is there and --resume is not given, a
        checkpoint does not fit, or fewer training cases than ranks.
    """
    cases_per_rank = len(data.train_cases) // ctx.ranks.rank_size
    if cases_per_rank == 0:
        raise UserError(f"{len(data.train_cases)} training case(s) cannot feed RANK_SIZE={ctx.ranks.rank_size} ranks")
    steps_per_epoch = epoch_steps(cases_per_rank, args.tumour_centres + args.background_centres, args.batch_size,
                                  args.sampling)
    total_steps = args.train_epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"))
    checkpoints = None if args.benchmark else npu_utils.RunCheckpoints(checkpoint, model, args.model_dir, ctx,
                                                                       keep=args.keep_checkpoints)
    restored = checkpoints.restore_or_start(args.resume, log) if checkpoints else None
    if restored and args.load_path:
        log(f"[train] -lp {args.load_path} not used: --resume continues this run's own checkpoint")
    elif args.load_path:
        log(f"[train] initial weights from {load_weights(model, args.load_path)}")
    if checkpoints and restored is None and ctx.is_chief:
        # An earlier run's best weights would otherwise be tested in place of this run's.
        shutil.rmtree(os.path.join(args.model_dir, BEST_FOLDER), ignore_errors=True)
    validate = Validation(args, model, data.val_cases, data.image_paths, log) if data.val_cases and checkpoints \
        else None
    return TrainState(args=args, ctx=ctx, model=model, checkpoint=checkpoint, checkpoints=checkpoints,
                      cases=ctx.shard(data.train_cases), image_paths=data.image_paths,
                      steps_per_epoch=steps_per_epoch, total_steps=total_steps, step=int(checkpoint.step),
                      validate=validate)


def train_epoch(state, train_step, timer):
    """Train on the rest of the current epoch (from ``state.step``), logging and saving as the flags say.

    The epoch's case order and patch centres are a function of --seed and the
    epoch alone, so a continued run sees the patches the interrupted one would have.
    """
    args = state.args
    epoch = state.step // state.steps_per_epoch

    def load_fn(index):
        case = state.cases[index]
        loaded = load_case(case, state.image_paths[case.case_id], normalisation=args.normalisation)
        return loaded.image, loaded.label, loaded.background

    dataset = patch_dataset(
        load_fn, len(state.cases), num_tumour=args.tumour_centres, num_background=args.background_centres,
        patch_size=(args.patch_width, args.patch_height, args.patch_depth), label_size=(args.label_size,) * 3,
        batch_size=args.batch_size, seed=args.seed, epoch=epoch, sampling=args.sampling,
    ).take(state.steps_per_epoch).skip(state.step % state.steps_per_epoch)
    for images, labels in dataset:
        loss = float(train_step(images, labels))
        if not math.isfinite(loss):
            last_good = (state.checkpoints and state.checkpoints.manager.latest_checkpoint) or "none"
            raise TrainingDiverged(f"non-finite loss {loss} at step {state.step + 1}; stopped without saving, the "
                                   f"last good checkpoint is {last_good}")
        state.step += 1
        state.checkpoint.step.assign(state.step)
        if state.first_step_sec is None or state.step % args.log_every == 0 or \
                state.step == state.total_steps:
            print(timer.line(state.step, loss), flush=True)
            state.first_step_sec = state.first_step_sec or timer.elapsed()
        if state.checkpoints and state.step % args.checkpoint_every == 0:
            state.checkpoints.save(state.step)
        if state.validate and state.step % args.eval_every == 0:
            state.validate(state.step)
        if state.step >= state.total_steps:
            break
    # Each epoch's end (or the run's) is a checkpoint too; a test of the step, not of the manager's
    # latest, so that every rank decides alike (each saves: npu_utils.RunCheckpoints).
    if state.checkpoints and state.step % args.checkpoint_every != 0:
        state.checkpoints.save(state.step)


def train(args, ctx, model, optimizer, data, log=print):
    """Train on ``data.train_cases`` (this rank's share), saving checkpoints; returns the model to test.

    Every epoch samples --tumour_centres + --background_centres patches per case;
    checkpoints go to ``<model_dir>/checkpoints`` every --checkpoint_every steps
    and at each epoch's end, the newest --keep_checkpoints kept, every rank
    saving (not in --benchmark runs). Once the run is set to go (checks
    and restore done) the chief writes ``<model_dir>/config.json``. Prints
    TRAIN lines (wall-clock speed, input pipeline included: npu_utils.StepTimer)
    and the METRIC lines patches_per_sec and voxels_per_sec.

    Raises:
      UserError: see :func:`restore_or_start`.
      TrainingDiverged: a non-finite loss or weights; the last good checkpoint stays the latest.
    """
    state = restore_or_start(args, ctx, model, optimizer, data, log)
    try:
        _train_from(state, args, ctx, model, optimizer, log)
    finally:
        if state.checkpoints:
            state.checkpoints.close()
    if ctx.multi_worker and ctx.is_chief and state.checkpoints:
        # Reading a per-worker BN statistic (Keras 2) is a collective, which the chief's test cannot run
        # once the other ranks have finished: it tests a copy outside the strategy, from the last checkpoint.
        model = tf_models.build_model(args.model_name, width_multiplier=args.width_multiplier)
        npu_utils.load_portable_weights(model, npu_utils.portable_weights_path(state.checkpoints.latest))
    return model


def _train_from(state, args, ctx, model, optimizer, log):
    """The loop of :func:`train` from ``state`` to its last step, then the speed METRIC lines."""
    if state.checkpoints and ctx.is_chief:
        flags.save_run_config(args, ctx)
    global_batch = args.batch_size * ctx.ranks.rank_size
    log(f"[train] {args.model_name}: {len(state.cases)} cases on this rank, {state.steps_per_epoch} steps per "
        f"epoch, steps {state.step} -> {state.total_steps}, batch {args.batch_size} x {ctx.ranks.rank_size} rank(s)")
    train_step = npu_utils.make_train_step(ctx, model, optimizer, metrics.make_loss_fn(model))
    first_step, timer = state.step, npu_utils.StepTimer(global_batch, first_step=state.step)
    while state.step < state.total_steps:
        train_epoch(state, train_step, timer)
    steps_run = state.step - first_step
    if state.validate and steps_run and state.step % args.eval_every != 0:
        state.validate(state.step)
    if steps_run:
        # After the first step (graph tracing) when there are others.
        timed_steps, timed_sec = ((steps_run - 1, timer.elapsed() - state.first_step_sec) if steps_run > 1
                                  else (1, timer.elapsed()))
        patches_per_sec = global_batch * timed_steps / max(timed_sec, 1e-9)
        print(npu_utils.format_metric_line("patches_per_sec", patches_per_sec))
        print(npu_utils.format_metric_line("voxels_per_sec", patches_per_sec * args.label_size ** 3))
    log(f"[train] done at step {state.step} in {timer.elapsed():.1f} s")
