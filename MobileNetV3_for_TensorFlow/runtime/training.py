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
"""The training loop: custom loop over common/npu_utils.make_train_step.

Keras ``fit`` is not used because it fails under MultiWorkerMirroredStrategy
with Keras 3 (see the repository's tensorflow_notes). Checkpoints hold the
model, the optimizer state and the step; a run killed at any moment resumes
from the last one, skipping the batches already seen in that epoch.
"""

import csv
import json
import math
import os
import sys
import tempfile
import time

import keras
import tensorflow as tf

from common import npu_utils
from common.npu_utils import UserError
from data_loading import pipeline
from data_loading.folders import IGNORE_LABEL
from runtime import inference
from runtime.metrics import BEST_METRIC
from runtime.network import build_network, load_initial_weights, save_model, set_backbone_trainable

CHECKPOINTS_KEPT = 3
# The paper's RMSProp: momentum 0.9; rho and epsilon as in TF-slim's MobileNet recipes.
RMSPROP = {"rho": 0.9, "momentum": 0.9, "epsilon": 1e-3}


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite; nothing was saved after the last good step."""


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then cosine decay to 0, step decay, or constant.

    Args:
      peak: learning rate at the end of the warm-up.
      total_steps, warmup_steps, decay_steps: in optimizer steps.
      kind: "cosine", "step" or "constant".
      decay_rate: step schedule factor every ``decay_steps``.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, kind="cosine", decay_steps=1, decay_rate=1.0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)
        self.kind, self.decay_steps, self.decay_rate = kind, max(int(decay_steps), 1), float(decay_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(self.warmup_steps)
        after = step - warmup
        if self.kind == "cosine":
            progress = tf.minimum(after / max(self.total_steps - warmup, 1.0), 1.0)
            decayed = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        elif self.kind == "step":
            decayed = self.peak * self.decay_rate ** tf.floor(after / self.decay_steps)
        else:
            decayed = tf.constant(self.peak)
        return tf.where(step < warmup, self.peak * (step + 1.0) / max(warmup, 1.0), decayed)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "kind": self.kind, "decay_steps": self.decay_steps, "decay_rate": self.decay_rate}


def make_optimizer(ctx, args, schedule):
    """Adam (default) or RMSProp, with dynamic loss scaling under float16."""
    if args.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(schedule, **RMSPROP)
    else:
        optimizer = keras.optimizers.Adam(schedule)
    if ctx.precision.loss_scaling:
        return keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=args.loss_scale or 2.0 ** 15)
    if args.loss_scale is not None:
        print(f"[train] warning: --loss_scale has no effect with precision {ctx.precision.policy} "
              "(loss scaling is for float16 on GPU; the Ascend adapter scales itself)", flush=True)
    return optimizer


def make_loss(model, task, num_classes, label_smoothing):
    """``loss_fn(images, labels) -> scalar``: the mean over the local batch.

    Classification: categorical cross-entropy with label smoothing.
    Segmentation: pixel cross-entropy over pixels whose label is not 255.
    """
    if task == "segmentation":
        def loss_fn(images, masks):
            probabilities = model(images, training=True)
            valid = tf.not_equal(masks, IGNORE_LABEL)
            pixel_loss = keras.losses.sparse_categorical_crossentropy(tf.where(valid, masks, 0), probabilities)
            weight = tf.cast(valid, pixel_loss.dtype)
            return tf.reduce_sum(pixel_loss * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
        return loss_fn
    # The loss function, not the Loss class: under a tf.distribute strategy the
    # class divides by the replica count, and make_train_step averages already.
    def loss_fn(images, labels):
        per_image = keras.losses.categorical_crossentropy(tf.one_hot(labels, num_classes),
                                                          model(images, training=True),
                                                          label_smoothing=label_smoothing)
        return tf.reduce_mean(per_image)
    return loss_fn


class History:
    """Per-epoch CSV history and TensorBoard summaries (chief only); appends on resume."""

    def __init__(self, save_dir, enabled):
        self.enabled = enabled
        self.csv_path = os.path.join(save_dir, "history.csv")
        self.writer = tf.summary.create_file_writer(os.path.join(save_dir, "tensorboard")) if enabled else None

    def scalars(self, step, values):
        if self.enabled:
            with self.writer.as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(name, value)

    def epoch(self, row):
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


def train(args, ctx, dataset, num_classes):
    """Train the network of ``args`` on ``dataset``; returns the final model.

    Writes into ``args.save_dir``: ``checkpoints/`` (every --save_interval
    steps and every epoch), ``best/`` (model.keras, class_names.json,
    best.json: the epoch with the highest validation top1 or miou),
    ``model.keras`` + ``class_names.json`` (final), ``history.csv`` and
    ``tensorboard/``.

    Raises:
      UserError: too few images for one batch, or unusable --weights.
      NonFiniteLossError: the loss became NaN/inf (no checkpoint written after it).
    """
    if ctx.is_chief:
        return _train(args, ctx, dataset, num_classes, os.path.join(args.save_dir, "checkpoints"))
    # Every worker must take part in a save under MultiWorkerMirroredStrategy;
    # only the chief's copy is kept, the others' are deleted when training ends.
    with tempfile.TemporaryDirectory(prefix=f"mnv3_worker{ctx.ranks.rank_id}_",
                                     ignore_cleanup_errors=True) as checkpoint_dir:
        return _train(args, ctx, dataset, num_classes, checkpoint_dir)


def _train(args, ctx, dataset, num_classes, checkpoint_dir):
    """The body of :func:`train`, saving checkpoints into ``checkpoint_dir``."""
    task = args.task
    steps_per_epoch = len(dataset.train.paths) // ctx.ranks.rank_size // args.batch
    if steps_per_epoch < 1:
        raise UserError(f"--batch={args.batch} x {ctx.ranks.rank_size} workers is more than the "
                        f"{len(dataset.train.paths)} training images")
    total_steps = args.epochs * steps_per_epoch
    if args.max_step:
        total_steps = min(total_steps, args.max_step)

    keras.utils.set_random_seed(args.seed)
    schedule = WarmupDecay(args.learning_rate, total_steps, round(args.warmup_epochs * steps_per_epoch),
                           args.lr_schedule, round(args.lr_decay_epochs * steps_per_epoch), args.lr_decay_rate)
    with ctx.strategy.scope():
        model = build_network(args, num_classes)
        optimizer = make_optimizer(ctx, args, schedule)
        optimizer.build(model.trainable_variables)
        global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=global_step)
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, CHECKPOINTS_KEPT)
    if manager.latest_checkpoint:
        error = npu_utils.restore_checkpoint(checkpoint, manager.latest_checkpoint)
        if error:
            raise UserError(f"{manager.latest_checkpoint} in --modeldir={args.save_dir} comes from another "
                            f"network (--model, --alpha, --class_number, --task); continue it with that "
                            f"run's settings or choose another --modeldir: {error}")
        print(f"[train] resumed from {manager.latest_checkpoint} at step {int(global_step.numpy())}", flush=True)
    elif args.weights:
        print(f"[train] {load_initial_weights(model, args.weights)}", flush=True)
    # Every rank continues from rank 0's weights, optimizer state and step.
    ctx.broadcast_variables(model.weights + optimizer.variables + [global_step])

    train_data = pipeline.TrainData(ctx.shard(dataset.train.paths), ctx.shard(dataset.train.labels), task,
                                    args.height, args.width, args.batch, args.seed, steps_per_epoch)
    val_data = pipeline.eval_dataset(dataset.validation.paths, dataset.validation.labels, task,
                                     args.height, args.width, args.batch)
    print(f"[train] {task} {args.model} alpha {args.alpha:g}, {num_classes} classes, "
          f"{len(dataset.train.paths)} train / {len(dataset.validation.paths)} validation images, "
          f"{steps_per_epoch} steps per epoch, {total_steps} steps, training images "
          f"{'cached' if train_data.cached else 'decoded every epoch (too many to cache)'}", flush=True)

    loss_fn = make_loss(model, task, num_classes, args.label_smoothing)
    full_step = npu_utils.make_train_step(ctx, model, optimizer, loss_fn)
    head_step = None
    if args.freeze_backbone_epochs > 0:
        set_backbone_trainable(model, False)
        head_step = npu_utils.make_train_step(ctx, model, optimizer, loss_fn)
        set_backbone_trainable(model, True)

    best_metric = BEST_METRIC[task]
    best_dir = os.path.join(args.save_dir, "best")
    best_value = _read_best(best_dir, best_metric)
    history = History(args.save_dir, ctx.is_chief)
    global_batch = args.batch * ctx.ranks.rank_size
    step = int(global_step.numpy())
    start_time = time.time()
    progress = sys.stdout.isatty() and ctx.is_chief

    for epoch in range(step // steps_per_epoch, args.epochs):
        if step >= total_steps:
            break
        frozen = epoch < args.freeze_backbone_epochs
        set_backbone_trainable(model, not frozen)
        train_step = head_step if frozen else full_step
        bar = keras.utils.Progbar(min(steps_per_epoch, total_steps - epoch * steps_per_epoch)) if progress else None
        epoch_losses = []
        for images, labels in train_data.epoch(epoch, skip_batches=step - epoch * steps_per_epoch):
            tick = time.time()
            loss = float(train_step(images, labels))
            step += 1
            if not math.isfinite(loss):
                print(npu_utils.format_step_line(step, loss, 0.0, time.time() - start_time), flush=True)
                raise NonFiniteLossError(f"non-finite loss ({loss}) at step {step}: training stopped and "
                                         "nothing was saved after it; last good checkpoint: "
                                         f"{manager.latest_checkpoint or 'none'}")
            global_step.assign(step)
            epoch_losses.append(loss)
            if step % args.log_every == 0:
                print(npu_utils.format_step_line(step, loss, global_batch / (time.time() - tick),
                                                 time.time() - start_time), flush=True)
            history.scalars(step, {"loss": loss, "learning_rate": float(schedule(step - 1))})
            if bar is not None:
                bar.update(step - epoch * steps_per_epoch, [("loss", loss)])
            if step % args.save_interval == 0:
                manager.save(checkpoint_number=step)
            if step >= total_steps:
                break
        if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(f"-{step}"):
            manager.save(checkpoint_number=step)

        result = inference.evaluate(model, val_data, task, num_classes)
        inference.print_metric_lines(result)
        value = result[best_metric]
        if ctx.is_chief and value > best_value:
            best_value = value
            _save_trainable(model, dataset.class_names, best_dir)
            with open(os.path.join(best_dir, "best.json"), "w", encoding="utf-8") as handle:
                json.dump({"metric": best_metric, "value": value, "step": step, "epoch": epoch + 1}, handle)
            print(f"[train] best {best_metric}={value:.4f} at epoch {epoch + 1}: saved {best_dir}", flush=True)
        scalars = inference.scalar_metrics(result)
        history.scalars(step, {f"val_{name}": v for name, v in scalars.items()})
        history.epoch({"epoch": epoch + 1, "step": step,
                       "loss": sum(epoch_losses) / max(len(epoch_losses), 1),
                       "learning_rate": float(schedule(step - 1)),
                       **{f"val_{name}": f"{v:.6f}" for name, v in scalars.items()},
                       "elapsed_sec": round(time.time() - start_time, 2)})
    if ctx.is_chief:
        _save_trainable(model, dataset.class_names, args.save_dir)
        print(f"[train] final model in {args.save_dir}; best {best_metric}={best_value:.4f} in {best_dir}",
              flush=True)
    return model
