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
"""The training run, in the skeleton every model's runtime/training.py shares: custom loop over
common/npu_utils.make_train_step.

Keras ``fit`` is not used because it fails under MultiWorkerMirroredStrategy
with Keras 3 (see the repository's tensorflow_notes). Checkpoints hold the
model, the optimizer state and the step, under the rules every model shares
(``RunCheckpoints``: ``<model_dir>/checkpoints``, --keep_checkpoints,
--resume); a run killed at any moment resumes from the last one with
--resume=True, skipping the batches already seen in that epoch.

:func:`build` (network, optimizer, checkpoints: a :class:`TrainState`) ->
:func:`restore_or_start` -> :func:`train` (the input pipelines, config.json,
then per epoch the steps, each followed by :func:`end_step`, and the epoch's
end: checkpoint, validation, best model, history) -> :func:`finish` (the
final model). The step cap, the non-finite loss stop, the checkpoint cadence
and the scratch clean-up are common/TrainingSteps', the same in
every model. One input pipeline serves the whole run
(pipeline.TrainData.batches), so a new epoch does not start from an empty buffer.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import itertools
import json
import math
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import tensorflow as tf

from common import npu_utils, stack
from common.checkpoints import RunCheckpoints, TrainingSteps, broadcast_start, step_cap
from common.errors import UserError
from common.stack import keras
from data_loading import augment, decoding, pipeline
from model.network import build_network, load_initial_weights, save_model, set_backbone_trainable
from model.recipe import MovingAverage, WarmupDecay, averaged_variables, make_optimizer
from runtime import evaluation, flags
from runtime.metrics import BEST_METRIC, chance_hint, make_loss

if TYPE_CHECKING:  # for the hints only
    from data_loading import folders

HISTORY_FILE = "history.csv"


class History:
    """Per-epoch CSV history and TensorBoard summaries (chief only); appends on resume."""

    def __init__(self, save_dir: str, enabled: bool) -> None:
        self.enabled = enabled
        self.csv_path = os.path.join(save_dir, HISTORY_FILE)
        self.writer = tf.summary.create_file_writer(os.path.join(save_dir, "tensorboard")) if enabled else None

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self.enabled:
            with self.writer.as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(name, value)

    def epoch(self, row: Mapping[str, object]) -> None:
        if not self.enabled:
            return
        new = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.writer.flush()


def _read_best(best_dir, metric):
    path = os.path.join(best_dir, "best.json")
    if not os.path.isfile(path):
        return -math.inf
    with open(path, encoding="utf-8") as handle:
        best = json.load(handle)
    return best["value"] if best.get("metric") == metric else -math.inf


def _save_trainable(model, class_names, folder):
    """Save ``model`` with every layer trainable, also during --freeze_backbone_epochs.

    Keras stores ``trainable`` in the saved file, so a model saved during the
    frozen epochs would load with a frozen backbone. The head-only step was
    traced frozen at its first call, before any save, and every epoch sets
    the backbone's state again at its start.
    """
    set_backbone_trainable(model, True)
    save_model(model, class_names, folder)


@dataclasses.dataclass
class TrainState:
    """What the training loop carries from step to step and epoch to epoch."""

    args: object  # the parsed flags
    ctx: npu_utils.RunContext
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    schedule: WarmupDecay
    checkpoints: RunCheckpoints  # the run folder's (this rank's scratch one off the chief); None: --benchmark
    global_step: tf.Variable
    steps_per_epoch: int
    total_steps: int
    dataset: object  # evaluation.load_data's splits and class names
    step: int = 0  # steps done, also on resume
    best_value: float = -math.inf  # best validation metric of this run
    train_data: object = None  # pipeline.TrainData of this rank's shard
    val_data: object = None
    step_fns: dict = None  # {"full": step function, "head": step function or None}
    steps: object = None  # TrainingSteps of the run (restore_or_start)
    history: object = None
    timer: object = None  # npu_utils.StepTimer, from the first step of this process
    checker: object = None  # decoding.DecodeChecker: files that failed to decode
    average: MovingAverage = None  # --ema_momentum's moving average, or None

    def averaged(self) -> contextlib.AbstractContextManager[None]:
        """Context: the model holds the moving average of its weights (--ema_momentum), if there is one."""
        return self.average.swapped() if self.average else contextlib.nullcontext()


def build(args: argparse.Namespace, ctx: npu_utils.RunContext, dataset: folders.Dataset) -> TrainState:
    """The :class:`TrainState` of a fresh network and optimizer for ``dataset`` (evaluation.load_data), with
    the run folder's checkpoints (none for --benchmark).

    Raises:
      UserError: too few images for one batch.
    """
    steps_per_epoch, total_steps = _plan_steps(args, ctx, len(dataset.train.paths))
    schedule = WarmupDecay(args.learning_rate, total_steps, round(args.warmup_epochs * steps_per_epoch),
                           args.lr_schedule, round(args.lr_decay_epochs * steps_per_epoch), args.lr_decay_rate)
    with ctx.strategy.scope():
        model = build_network(args, args.class_number)
        optimizer = make_optimizer(ctx, args, schedule)
        stack.build_optimizer(optimizer, model.trainable_variables)
        global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        # Of every weight, also those a --freeze_backbone_epochs run does not train yet.
        average = MovingAverage(averaged_variables(model), args.ema_momentum) if args.ema_momentum else None
    parts = {"average": average.averages} if average else {}
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=global_step, **parts)
    checkpoints = None if args.benchmark else RunCheckpoints(checkpoint, model, args.model_dir, ctx,
                                                                       args.keep_checkpoints)
    return TrainState(args, ctx, model, optimizer, schedule, checkpoints, global_step, steps_per_epoch,
                      total_steps, dataset, average=average)


def restore_or_start(state: TrainState) -> None:
    """Resume from the run folder's last checkpoint, or start (from --weights), as --resume says.

    --weights loads only when no checkpoint is continued, and before
    --resume=False deletes the folder's checkpoints (the weights may come
    from them); the chief then deletes the old history too. Every rank ends
    with rank 0's weights, optimizer state and step.

    Raises:
      UserError: unusable --weights, or a checkpoint in --model_dir without
        --resume (or one that does not fit).
    """
    args, ctx, model = state.args, state.ctx, state.model
    # Not given with a checkpoint there is refused by RunCheckpoints.restore_or_start, before any download of
    # --weights.
    checkpoints = state.checkpoints
    if args.weights and (checkpoints is None or args.resume is False or not checkpoints.latest):
        print(f"[train] {load_initial_weights(model, args.weights, args.model, args.alpha)}", flush=True)
    # The network flags came from the run's config.json (flags.parse_args): a checkpoint that still does
    # not fit differs in its class count, or comes from the other stack; the one-line error says which.
    restored = checkpoints is not None and checkpoints.restore_or_start(args.resume, log=lambda l: print(l, flush=True))
    if restored:
        state.step = int(state.global_step.numpy())
        state.best_value = _read_best(os.path.join(args.model_dir, "best"), BEST_METRIC[args.task])
        print(f"[train] resuming at step {state.step}", flush=True)
    else:
        if state.average:  # the average starts at the weights training starts from, as TF's does
            state.average.reset()
        if args.resume is False and ctx.is_chief and os.path.exists(os.path.join(args.model_dir, HISTORY_FILE)):
            os.remove(os.path.join(args.model_dir, HISTORY_FILE))  # the new run's history replaces it
    with ctx.strategy.scope():  # every rank decides alike when to save a best model (see _model_folder)
        best_value = tf.Variable(state.best_value, dtype=tf.float32, trainable=False, name="best_value")
    averages = state.average.averages if state.average else []
    broadcast_start(ctx, model, state.optimizer, averages + [state.global_step, best_value])
    state.step, state.best_value = int(state.global_step.numpy()), float(best_value.numpy())
    state.steps = TrainingSteps(checkpoints, args.checkpoint_every, state.step, state.total_steps)


def train(state: TrainState) -> keras.Model:
    """Train from ``state.step`` to the step cap, then :func:`finish`; returns the final model.

    Writes into ``args.model_dir``: ``config.json`` (the run's flags, once the
    checks and the restore succeeded), ``checkpoints/`` (every
    --checkpoint_every steps and every epoch, each with its portable
    weights), ``best/`` (the model file, its portable weights,
    class_names.json, best.json: the epoch with the highest validation top1
    or miou), the same three files of the final model,
    ``history.csv`` and ``tensorboard/``. The model file is ``model.keras``
    on Keras 3 and ``model.h5`` on Keras 2.6; the other stack reads the
    portable weights ``model.weights.npz`` beside it. A --benchmark run
    writes only config.json: it times the steps, reads and writes no
    checkpoint, and neither validates nor saves a model.

    Raises:
      UserError: a training or validation file that does not decode (without --skip_bad_images).
      errors.TrainingDiverged: the loss or a weight became NaN/inf (no checkpoint written after it).
    """
    args, ctx = state.args, state.ctx
    try:  # a worker other than the chief removes its scratch folder however training ends
        _prepare_loop(state)  # a split kept in memory is decoded (and its files checked) here
        if ctx.is_chief:  # every check passed and the restore succeeded
            flags.write_run_config(args, ctx)
        state.timer = npu_utils.StepTimer(args.batch_size * ctx.ranks.rank_size, first_step=state.step)
        batches = state.train_data.batches(state.step, args.train_epochs)  # one pipeline for the whole run
        for epoch in range(state.step // state.steps_per_epoch, args.train_epochs):
            if state.step >= state.total_steps:
                break
            mean_loss = _train_epoch(state, epoch, batches)
            if not args.benchmark:
                with state.timer.paused():
                    _end_epoch(state, epoch, mean_loss)
        finish(state)
    finally:
        state.steps.close()
    return state.model


def end_step(state: TrainState, loss: tf.Tensor, epoch: int, bar: keras.utils.Progbar | None) -> None:
    """The bookkeeping of the step just run (``loss``: its loss tensor, read on the host only for a TRAIN
    line, every --log_every steps): the decode check, the TRAIN line, the step and the moving average, the
    non-finite check and the checkpoint cadence of TrainingSteps.

    Raises:
      errors.TrainingDiverged: a non-finite loss at a TRAIN line (its line printed first).
    """
    state.step += 1
    state.checker.raise_if_bad()
    logged = None
    if state.step % state.args.log_every == 0:
        logged = float(loss)
        _log_step(state, logged, bar, epoch)
    state.global_step.assign(state.step)
    if state.average:
        state.average.update(state.global_step)  # TF's num_updates: the steps done, this one included
    state.steps.end_step(state.step, logged)


def finish(state: TrainState) -> None:

    """The end of the run: its last checkpoint, and the final model (the moving average's weights, if any)
    with a line saying where it and the best one are (a --benchmark run saves none)."""
    args = state.args
    state.steps.save(state.step)
    if not args.benchmark:
        with state.averaged():
            _save_trainable(state.model, state.dataset.class_names, _model_folder(state))
    if state.ctx.is_chief and args.benchmark:
        print(f"[train] --benchmark: {state.step} steps timed; no checkpoint, validation or model saved", flush=True)
    elif state.ctx.is_chief:
        print(f"[train] final model in {args.model_dir}; best {BEST_METRIC[args.task]}={state.best_value:.4f} in "
              f"{os.path.join(args.model_dir, 'best')}", flush=True)


def _model_folder(state):
    """Where this rank saves the best and final models: the run folder on the chief; inside its scratch
    checkpoint folder on the others. Every rank saves: under MultiWorkerMirroredStrategy reading some
    variables (Keras 2.6's BatchNormalization statistics) is an all-reduce that every worker must join."""
    return state.args.model_dir if state.ctx.is_chief else os.path.join(state.checkpoints.directory, "saved_model")


def _plan_steps(args, ctx, image_count):
    """``(steps_per_epoch, total_steps)``: every rank runs the same number of full batches."""
    steps_per_epoch = image_count // ctx.ranks.rank_size // args.batch_size
    if steps_per_epoch < 1:
        raise UserError(f"--batch_size={args.batch_size} x {ctx.ranks.rank_size} workers is more than the "
                        f"{image_count} training images")
    return steps_per_epoch, step_cap(args.max_steps, args.train_epochs, steps_per_epoch)


def _prepare_loop(state):
    """The input pipelines, the compiled steps and the history of ``state``."""
    args, ctx, dataset = state.args, state.ctx, state.dataset
    state.checker = decoding.DecodeChecker(args.skip_bad_images)
    state.train_data = pipeline.TrainData(ctx.shard(dataset.train.paths), ctx.shard(dataset.train.labels),
                                          args.task, args.height, args.width, args.batch_size, args.seed,
                                          state.steps_per_epoch, flags.cache_bytes(args), state.checker,
                                          args.class_number, augmentation=augment.Augmentation(
                                              args.max_rotation, args.color_distortion, args.color_jitter))
    if not args.benchmark:  # a --benchmark run does not validate
        state.val_data = pipeline.eval_dataset(dataset.validation.paths, dataset.validation.labels, args.task,
                                               args.height, args.width, args.batch_size, flags.cache_bytes(args),
                                               state.checker, args.class_number)
    decoded_mb = state.train_data.bytes_needed / 1024 ** 2
    kept = "kept in memory" if state.train_data.cached else "streamed from the files every epoch"
    print(f"[train] {args.task} {args.model} alpha {args.alpha:g}, {args.class_number} classes, "
          f"{len(dataset.train.paths)} train / {len(dataset.validation.paths)} validation images, "
          f"{state.steps_per_epoch} steps per epoch, {state.total_steps} steps; training images {kept} "
          f"({decoded_mb:.0f} MB decoded per process, --cache_budget_mb={args.cache_budget_mb:g})", flush=True)
    l2 = args.weight_decay if args.weight_decay_mode == "l2" else 0.0
    loss_fn = make_loss(state.model, args.task, args.class_number, args.label_smoothing, l2)
    state.step_fns = {"full": npu_utils.make_train_step(ctx, state.model, state.optimizer, loss_fn), "head": None}
    if args.freeze_backbone_epochs > 0:
        set_backbone_trainable(state.model, False)
        state.step_fns["head"] = npu_utils.make_train_step(ctx, state.model, state.optimizer, loss_fn)
        set_backbone_trainable(state.model, True)
    state.history = History(args.model_dir, ctx.is_chief and not args.benchmark)


def _train_epoch(state, epoch, batches):
    """The steps of ``epoch`` (0-based) from ``state.step`` on, from the run's ``batches``; returns the epoch's
    mean loss (a float).

    The loss is read on the host only for a TRAIN line (every --log_every
    steps), so the host does not wait for every step; the epoch's mean is
    read once at its end.

    Raises:
      errors.TrainingDiverged: a non-finite loss at a TRAIN line or the epoch's end (nothing is saved after
        it; a checkpoint in between refuses non-finite weights).
    """
    args, spe = state.args, state.steps_per_epoch
    frozen = epoch < args.freeze_backbone_epochs
    set_backbone_trainable(state.model, not frozen)
    train_step = state.step_fns["head"] if frozen else state.step_fns["full"]
    end = min((epoch + 1) * spe, state.total_steps)
    bar = None
    if sys.stdout.isatty() and state.ctx.is_chief:
        bar = keras.utils.Progbar(min(spe, state.total_steps - epoch * spe))
    state.train_data.record_known_bad()
    losses = []
    for images, labels in itertools.islice(batches, end - state.step):
        loss = train_step(images, labels)
        end_step(state, loss, epoch, bar)
        losses.append(loss)
    mean_loss = float(tf.reduce_mean(tf.stack(losses))) if losses else 0.0
    state.steps.check_loss(state.step, mean_loss)
    return mean_loss


def _log_step(state, loss, bar, epoch):
    """The TRAIN line, TensorBoard scalars and progress bar of step ``state.step`` (``loss``: its float loss).

    Raises:
      errors.TrainingDiverged: ``loss`` is not finite (its TRAIN line printed first).
    """
    if not math.isfinite(loss):
        print(npu_utils.format_step_line(state.step, loss, 0.0, state.timer.elapsed()), flush=True)
        state.steps.check_loss(state.step, loss)
    print(state.timer.line(state.step, loss), flush=True)
    state.history.scalars(state.step, {"loss": loss, "learning_rate": float(state.schedule(state.step - 1))})
    if bar is not None:
        bar.update(state.step - epoch * state.steps_per_epoch, [("loss", loss)])


def _end_epoch(state, epoch, mean_loss):
    """Checkpoint, validate, keep the best model and write the history row of ``epoch``."""
    args, step, class_names = state.args, state.step, state.dataset.class_names
    state.steps.save(step)
    with state.averaged():  # the weights evaluate, predict and export will use
        result = evaluation.evaluate(state.model, state.val_data, args.task, args.class_number, args.batch_size)
        state.checker.end_pass(f"epoch {epoch + 1}")
        evaluation.print_metric_lines(result)
        hint = chance_hint(result, mean_loss) if args.task == "classification" else None
        if hint and state.ctx.is_chief:
            print(hint, flush=True)
        best_metric = BEST_METRIC[args.task]
        value = result[best_metric]
        # Every rank evaluated the same weights on the whole validation split: all take this branch alike.
        if value > state.best_value:
            state.best_value = value
            best_dir = os.path.join(_model_folder(state), "best")
            _save_trainable(state.model, class_names, best_dir)
            if state.ctx.is_chief:
                with open(os.path.join(best_dir, "best.json"), "w", encoding="utf-8") as handle:
                    json.dump({"metric": best_metric, "value": value, "step": step, "epoch": epoch + 1}, handle)
                print(f"[train] best {best_metric}={value:.4f} at epoch {epoch + 1}: saved {best_dir}", flush=True)
    scalars = evaluation.scalar_metrics(result)
    state.history.scalars(step, {f"val_{name}": v for name, v in scalars.items()})
    state.history.epoch({"epoch": epoch + 1, "step": step, "loss": mean_loss,
                         "learning_rate": float(state.schedule(step - 1)),
                         **{f"val_{name}": f"{v:.6f}" for name, v in scalars.items()},
                         "elapsed_sec": round(state.timer.elapsed(), 2)})
