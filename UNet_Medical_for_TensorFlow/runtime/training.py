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

:func:`build` (folds, network, optimizer, checkpoints: a :class:`TrainState`,
for every mode), :func:`restore_or_start` (resume, start over or refuse,
pretrained weights; evaluate and predict restore the last checkpoint),
:func:`train` (the loop), :func:`end_step` (one step's bookkeeping) and
:func:`finish` (the last checkpoint, the benchmark figures, the export).
The step is common/npu_utils.make_train_step (XLA, loss scaling, gradient
averaging over workers); common/npu_utils.StepTimer counts wall-clock
images/s, input pipeline included; common/TrainingSteps keeps the
step cap, the non-finite loss stop, the checkpoint cadence and the scratch
clean-up every model shares.

A training's checkpoints follow the rules every model shares
(common/RunCheckpoints: ``--model_dir/checkpoints/ckpt-<step>``,
written atomically), so a run killed at any moment resumes from its last
checkpoint with ``--resume``. ``config.json`` is written by
``flags.write_run_config``, by training only, once every check passed and the
restore succeeded.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import math
import os
import time
from collections.abc import Mapping, Sequence

import tensorflow as tf

from common import cli, npu_utils, stack
from common.checkpoints import (RunCheckpoints, TrainingSteps, broadcast_start, latest_checkpoint, restore_checkpoint,
                                step_cap)
from common.errors import UserError
from common.stack import keras
from data_loading import folds, pipeline, readers
from model import tile_sizes, unet
from runtime import evaluation, flags, inference, metrics

# The training step in a checkpoint: a variable of the tf.train.Checkpoint itself, so its key is the same
# on both stacks (the model's variables are not).
STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


class RunLog:
    """The run's outputs besides stdout: JSON lines (``--log_dir``) and TensorBoard (chief only).

    ``--log_dir`` a folder: ``{"step": ..., name: value}`` lines in its
    log.jsonl. ``--log_dir FILE.json``: NVIDIA's dllogger lines
    (``DLLL {"timestamp", "datetime", "elapsedtime", "type": "LOG", "step", "data"}``),
    with ``step`` ``[step, last step]`` in training and ``[]`` for the
    final figures, as NVIDIA's runtime/run.py logs them. Both outputs are
    opened at the first record, so that a run that fails before it leaves no
    empty folder or file behind.
    """

    def __init__(self, args: argparse.Namespace, is_chief: bool) -> None:
        self.args, self.is_chief = args, is_chief
        self.jsonl = None
        self.writer = None
        self.start = time.time()

    def _open(self):
        log_dir = self.args.log_dir
        if flags.nvidia_log_file(log_dir):
            os.makedirs(os.path.dirname(os.path.abspath(log_dir)), exist_ok=True)
            self.jsonl = open(log_dir, "a", encoding="utf-8")
        elif log_dir:
            os.makedirs(log_dir, exist_ok=True)
            self.jsonl = open(os.path.join(log_dir, "log.jsonl"), "a", encoding="utf-8")
        self.writer = tf.summary.create_file_writer(os.path.join(self.args.model_dir, "tensorboard"))

    def record(self, step: int, values: Mapping[str, float], nvidia_step: Sequence[int] = ()) -> None:
        """Write ``values`` ({name: float}) at ``step`` to both outputs (``nvidia_step``: the dllogger step)."""
        if not self.is_chief:
            return
        if self.writer is None:
            self._open()
        if self.jsonl and flags.nvidia_log_file(self.args.log_dir):
            now = datetime.datetime.now()
            line = {"timestamp": str(now.timestamp()), "datetime": str(now),
                    "elapsedtime": str(now.timestamp() - self.start), "type": "LOG",
                    "step": [int(s) for s in nvidia_step], "data": values}
            self.jsonl.write("DLLL " + json.dumps(line) + "\n")
            self.jsonl.flush()
        elif self.jsonl:
            self.jsonl.write(json.dumps({"step": int(step), **values}) + "\n")
            self.jsonl.flush()
        with self.writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(name, value, step=int(step))
        self.writer.flush()


@dataclasses.dataclass
class TrainState:
    """Everything the modes share; built once by :func:`build`.

    Attributes:
      args: the parsed flags; ctx: common/npu_utils.RunContext;
      data: readers.SegmentationData.
      out: the network's output side for ``args.tile_size`` (572 -> 388),
        worked out here only.
      train_indices, validation_indices: the fold split of ``data.images``.
      model, optimizer, checkpoint (with its ``step``), log.
      probability_fn: runtime.inference.make_probability_fn of the model (evaluation, prediction).
      checkpoints: the run folder's RunCheckpoints (training only, None otherwise).
      steps: TrainingSteps of a training (set by :func:`train`); timer: its npu_utils.StepTimer.
      step_seconds: each step's wall-clock seconds, input pipeline included (the benchmark figures).
    """

    args: object
    ctx: object
    data: object
    out: int
    train_indices: list
    validation_indices: list
    model: object
    optimizer: object
    checkpoint: object
    checkpoints: object
    log: RunLog
    probability_fn: object
    steps: object = None
    timer: object = None
    step_seconds: list = dataclasses.field(default_factory=list)

    @property
    def step(self) -> int:
        return int(self.checkpoint.step.numpy())


def build(args: argparse.Namespace, ctx: npu_utils.RunContext, data: readers.SegmentationData) -> TrainState:
    """The :class:`TrainState` of every mode: the data checked against the flags, the folds split, the
    network and its optimizer built under the strategy, the run folder's checkpoints (training only).

    Raises:
      UserError: an image smaller than one output window, or too few slices for a fold.
    """
    out = tile_sizes.output_size(args.tile_size)
    if args.input_mode == "overlap_tile":  # the resize path brings any size to the output size
        readers.check_min_size(data, out)
    train_indices, validation_indices = [], []  # predict alone reads no training slices
    if data.images:
        train_indices, validation_indices = folds.fold_split(len(data.images), args.crossvalidation_idx, args.seed,
                                                             source=f"--data_path={args.data_path}",
                                                             scheme=args.fold_scheme)
    with ctx.strategy.scope():
        model = unet.build_unet(base_filters=args.base_filters, tile_size=args.tile_size,
                                n_classes=data.n_classes)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
        # Build the optimizer's slots now so that a checkpoint restores them.
        stack.build_optimizer(optimizer, model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer)
    # Every worker has its RunCheckpoints: under several workers each one saves (common/checkpoints.py).
    checkpoints = (RunCheckpoints(checkpoint, model, args.model_dir, ctx, keep=args.keep_checkpoints)
                   if flags.trains(args) and not args.benchmark else None)
    return TrainState(args, ctx, data, out, train_indices, validation_indices, model, optimizer, checkpoint,
                      checkpoints, RunLog(args, ctx.is_chief),
                      inference.make_probability_fn(model, ctx.use_xla, args.batch_size))


def restore_or_start(state: TrainState) -> int:
    """Restore the latest checkpoint, start over, or start fresh, as the mode and ``--resume`` ask.

    Training follows RunCheckpoints.restore_or_start (True:
    continue, False: delete the checkpoints and start over, not given: refuse
    a folder that holds one); evaluate and predict always restore. Then every
    rank takes rank 0's variables, and a training chief writes config.json
    (after all checks and the restore). Returns the step the run stands at.

    Raises:
      UserError: a checkpoint in the way, none to evaluate with, or one that
        is unreadable or does not fit.
    """
    args, ctx = state.args, state.ctx
    trains = flags.trains(args)
    if state.checkpoints is not None:
        if args.resume and state.checkpoints.latest:
            _check_readable(state.checkpoints.latest)  # a damaged file named as such, not as a misfit
        state.checkpoints.restore_or_start(args.resume, log=functools.partial(print, flush=True))
    elif not trains and ctx.is_chief and args.use_savedmodel:
        _load_export(state)
    elif not trains and ctx.is_chief:
        latest = latest_checkpoint(args.model_dir)
        if latest:
            _restore_weights(state, latest)
        elif not args.benchmark:
            raise UserError(f"--model_dir={args.model_dir}: no checkpoint to {args.mode} with")
    if trains and not state.step and args.pretrained_checkpoint:
        _load_pretrained(state.model, args.pretrained_checkpoint)
    # The same start on every rank, whatever each one's view of the run folder (and of a pretrained run).
    broadcast_start(ctx, state.model, state.optimizer, [state.checkpoint.step])
    if trains and ctx.is_chief and not args.benchmark:
        flags.write_run_config(args, ctx)
    return state.step


def train(state: TrainState) -> int:
    """Train from the checkpoint's step to the step cap, then :func:`finish`; returns the last step.

    Steps ``step + 1 .. last step``, with TRAIN lines, checkpoints and (chief,
    every ``--evaluate_every`` steps) the validation fold's metrics. The tile
    stream starts at batch ``step``, so a resumed run sees the batches an
    uninterrupted run would have seen (same --batch_size and ranks). A run
    whose checkpoint already reaches the cap (killed after its last
    checkpoint but before the export) trains nothing and exports.

    Raises:
      errors.TrainingDiverged: a non-finite loss (the last good checkpoint stays as it is).
    """
    args, ctx, model, start_step = state.args, state.ctx, state.model, state.step
    state.steps = TrainingSteps(state.checkpoints, args.checkpoint_every, start_step, _step_cap(state))
    last_step = state.steps.last_step
    try:
        if start_step >= last_step:
            cap = (f"--max_steps={last_step}" if last_step == args.max_steps
                   else f"step {last_step} (--train_epochs={args.train_epochs})")
            print(f"[train] checkpoint step {start_step} already reaches {cap}", flush=True)
        else:
            def loss_fn(images, onehot):
                return metrics.total_loss(model(images, training=True), onehot, model.trainable_variables,
                                         args.weight_decay)

            train_step = npu_utils.make_train_step(ctx, model, state.optimizer, loss_fn)
            iterator = iter(_train_dataset(state, start_step))
            state.timer = npu_utils.StepTimer(args.batch_size * ctx.ranks.rank_size, first_step=start_step)
            step_start = time.perf_counter()
            for step in range(start_step + 1, last_step + 1):
                logs = step % args.log_every == 0 or step == last_step
                # The L2 term of this step's loss, from the weights before the update (the same on every
                # worker), so that the logged loss is NVIDIA's cross-entropy + Dice loss with the L2 term beside it.
                l2_loss = float(metrics.weight_decay_loss(model.trainable_variables, args.weight_decay)) if logs \
                    else 0.0
                loss = float(train_step(*next(iterator)))
                step_start = end_step(state, step, loss, l2_loss if logs else None, step_start)
        finish(state)
    finally:
        state.steps.close()  # a non-chief worker's scratch checkpoints go, also after a failure
    return max(start_step, last_step)


def end_step(state: TrainState, step: int, loss: float, l2_loss: float | None, step_start: float) -> float:
    """The bookkeeping of training step ``step`` (``loss``: its float loss; ``l2_loss``: its L2 term when the
    step logs, else None; ``step_start``: when it began, perf_counter): the checks and checkpoint of
    TrainingSteps, the step time, the TRAIN line and the log, the validation every
    ``--evaluate_every`` steps (chief). Returns when the next step begins.

    Raises:
      errors.TrainingDiverged: ``loss`` is not finite.
    """
    args = state.args
    state.steps.check_loss(step, loss)
    state.checkpoint.step.assign(step)
    now = time.perf_counter()
    state.step_seconds.append(now - step_start)  # wall clock, input pipeline included, as the StepTimer
    if l2_loss is not None:
        print(f"{state.timer.line(step, loss - l2_loss)} l2_loss={l2_loss:.6f}", flush=True)
        state.log.record(step, {"loss": loss - l2_loss, "l2_loss": l2_loss, "images_per_sec": state.timer.last_rate},
                         (step, state.steps.last_step))
    if args.evaluate_every and step % args.evaluate_every == 0 and state.ctx.is_chief:
        with state.timer.paused():  # images/s and the step times count training alone
            evaluation.evaluate(state, state.probability_fn, step)
        now = time.perf_counter()
    state.steps.end_step(step)  # every worker saves, at the same steps
    return now


def finish(state: TrainState) -> None:

    """The end of a training: its last checkpoint, the --benchmark figures, and (chief) the exported model."""
    args = state.args
    state.steps.save(state.step)
    if args.benchmark:
        global_batch = args.batch_size * state.ctx.ranks.rank_size
        metrics.report(state.log, metrics.benchmark_statistics(state.step_seconds, global_batch, args.warmup_steps),
                       state.steps.last_step)
    if state.ctx.is_chief and not args.benchmark:
        path = os.path.join(args.model_dir, inference.EXPORT_FILE)
        state.model.save(path)
        print(f"[train] exported {path} at step {state.step} (keras.models.load_model "
              "needs no code of this repository)", flush=True)


def _step_cap(state):
    """The training's last step: the first of ``--max_steps`` and ``--train_epochs`` it reaches.

    An epoch is as many tiles as the training fold has slices, over the global batch.
    """
    args = state.args
    steps_per_epoch = math.ceil(len(state.train_indices) / (args.batch_size * state.ctx.ranks.rank_size))
    last_step = step_cap(args.max_steps, args.train_epochs, steps_per_epoch)
    if args.train_epochs:
        print(f"[train] --train_epochs={args.train_epochs}: {steps_per_epoch} steps per epoch "
              f"({len(state.train_indices)} training slices); stops at step {last_step}", flush=True)
    flags.check_step_plan(args, last_step)
    return last_step


def _check_readable(prefix):
    """Read every value of the checkpoint ``prefix`` once, so that a damaged file is named as such.

    Raises:
      UserError: the index, a data shard or the ``checkpoint`` state file is
        missing, truncated or corrupt.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, OSError, RuntimeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise UserError(f"{prefix}: the checkpoint is unreadable ({first}); delete it (and the 'checkpoint' "
                        "file naming it) or use another --model_dir") from None


def _restore_weights(state, prefix):
    """Restore the weights and step of ``prefix`` for evaluate and predict, also from a checkpoint
    written on the other stack (its portable weights file)."""
    _check_readable(prefix)
    error = restore_checkpoint(state.checkpoint, prefix, model=state.model)
    if error:
        # With the run's config.json the network's flags came from there; without it they may be wrong.
        hint = ("" if cli.read_run_config(state.args.model_dir) is not None else
                f" (no {cli.RUN_CONFIG} there: give the --base_filters and --n_classes of its training run)")
        raise UserError(f"{prefix} cannot be restored here: {error}{hint}")
    # The other stack's portable weights leave the step at 0: read it directly.
    state.checkpoint.step.assign(tf.train.load_checkpoint(prefix).get_tensor(STEP_KEY))
    print(f"[run] restored {prefix} (step {state.step})", flush=True)


def _load_export(state):
    """``--use_savedmodel``: the weights of the model file training exported (NVIDIA reads its SavedModel).

    Raises:
      UserError: no export in ``--model_dir`` (for instance one written on the other stack).
    """
    path = os.path.join(state.args.model_dir, inference.EXPORT_FILE)
    if not os.path.isfile(path):
        raise UserError(f"--use_savedmodel: no {path} (training writes it at its end, {inference.EXPORT_FILE} on "
                        "this stack); train to the end or leave out --use_savedmodel to use the last checkpoint")
    state.model.load_weights(path)
    print(f"[run] weights of {path} (--use_savedmodel)", flush=True)


def _load_pretrained(model, source_dir):
    """Copy an earlier run's weights into ``model``, all layers but ``logits`` when the classes differ.

    Raises:
      UserError: no config.json / checkpoint there, or a different architecture.
    """
    config = cli.read_run_config(source_dir)
    latest = latest_checkpoint(source_dir) if config is not None else None
    if latest is None:
        raise UserError(f"--pretrained_checkpoint={source_dir}: expected the --model_dir of an earlier "
                        f"run, with {cli.RUN_CONFIG} and a checkpoint")
    _check_readable(latest)
    source = unet.build_unet(base_filters=config["base_filters"], tile_size=model.input_shape[1],
                             n_classes=config["n_classes"])
    # Weights only (the source's optimizer state is not wanted), also from a run of the other stack.
    error = restore_checkpoint(tf.train.Checkpoint(model=source), latest, partial=True, model=source)
    if error:
        raise UserError(f"--pretrained_checkpoint={source_dir}: {latest} cannot be read into the network of its "
                        f"{cli.RUN_CONFIG}: {error}")
    skipped = []
    for layer in model.layers:
        weights = source.get_layer(layer.name).get_weights()
        if [w.shape for w in weights] != [w.shape for w in layer.get_weights()]:
            if layer.name != "logits":
                raise UserError(f"--pretrained_checkpoint={source_dir}: layer {layer.name} differs "
                                f"(its run used --base_filters={config['base_filters']})")
            skipped.append(layer.name)
            continue
        layer.set_weights(weights)
    kept = "all layers" if not skipped else "all layers but logits (different class count)"
    print(f"[train] started from {latest}: {kept}", flush=True)


def _train_dataset(state, start_step):
    args, ctx, data = state.args, state.ctx, state.data
    shard = ctx.shard(state.train_indices)
    if not shard:
        raise UserError(f"RANK_SIZE={ctx.ranks.rank_size} is more than the {len(state.train_indices)} "
                        "training slices")
    return pipeline.train_dataset([data.images[i] for i in shard], [data.labels[i] for i in shard],
                                  args.tile_size, state.out, data.n_classes, args.batch_size, args.seed,
                                  augment=args.augment, rank_id=ctx.ranks.rank_id, start_batch=start_step,
                                  augment_set=args.augment_set, input_mode=args.input_mode)
