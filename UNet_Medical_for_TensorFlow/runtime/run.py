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
"""The run modes: train, evaluate, predict and their combinations.

Training uses common/npu_utils.make_train_step (XLA, loss scaling, gradient
averaging over workers); checkpoints go through tf.train.CheckpointManager
(written atomically), so a run killed at any moment resumes from its last
checkpoint with ``--resume_training``.
"""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from common import npu_utils
from common.npu_utils import UserError
from data_loading import folds, pipeline, tiff, tiles
from model import unet
from runtime import benchmark, flags, losses

EXPORT_FILE = "unet.keras"
OVERLAY_SLICES = 3  # PNG overlays written next to the predicted masks


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; nothing was saved after it."""


class RunLog:
    """The run's outputs besides stdout: JSON lines (``--log_dir``) and TensorBoard (chief only)."""

    def __init__(self, args, is_chief):
        self.jsonl = None
        self.writer = None
        if not is_chief:
            return
        if args.log_dir:
            os.makedirs(args.log_dir, exist_ok=True)
            self.jsonl = open(os.path.join(args.log_dir, "log.jsonl"), "a", encoding="utf-8")
        self.writer = tf.summary.create_file_writer(os.path.join(args.model_dir, "tensorboard"))

    def record(self, step, values):
        """Write ``values`` ({name: float}) at ``step`` to both outputs."""
        if self.jsonl:
            self.jsonl.write(json.dumps({"step": int(step), **values}) + "\n")
            self.jsonl.flush()
        if self.writer:
            with self.writer.as_default():
                for name, value in values.items():
                    tf.summary.scalar(name, value, step=int(step))
            self.writer.flush()


def build(args, ctx, n_classes):
    """The model and its optimizer, created under the distribution strategy."""
    with ctx.strategy.scope():
        model = unet.build_unet(base_filters=args.base_filters, tile_size=args.tile_size,
                                n_classes=n_classes)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
        # Build the optimizer's slots now so that a checkpoint restores them.
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, args.model_dir, max_to_keep=args.keep_checkpoints)
    return model, optimizer, checkpoint, manager


def load_pretrained(model, source_dir):
    """Copy an earlier run's weights into ``model``, all layers but ``logits`` when the classes differ.

    Raises:
      UserError: no config.json / checkpoint there, or a different architecture.
    """
    config = flags.read_config(source_dir)
    latest = tf.train.latest_checkpoint(source_dir)
    if config is None or latest is None:
        raise UserError(f"--pretrained_checkpoint={source_dir}: expected the --model_dir of an earlier "
                        f"run, with {flags.CONFIG_FILE} and a checkpoint")
    source = unet.build_unet(base_filters=config["base_filters"], tile_size=model.input_shape[1],
                             n_classes=config["n_classes"])
    tf.train.Checkpoint(model=source).restore(latest).expect_partial()
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


def make_probability_fn(model, use_xla):
    """``batch (N, T, T, 1) -> softmax probabilities (N, O, O, C)`` as a NumPy array."""

    @tf.function(jit_compile=use_xla, reduce_retracing=True)
    def probabilities(batch):
        return tf.nn.softmax(model(batch, training=False))

    return lambda batch: probabilities(tf.convert_to_tensor(batch, tf.float32)).numpy()


def predict_images(probability_fn, images, args):
    """Stitched (H, W, C) probabilities of each uint8 image, tile by tile."""
    out = unet.output_size(args.tile_size)
    return [tiles.predict_tiled(probability_fn, tiles.normalize(image.astype(np.float32)),
                                args.tile_size, out, batch_size=args.batch_size) for image in images]


def train(args, ctx, data, train_indices, model, optimizer, checkpoint, manager, run_log):
    """Train from the checkpoint's step to ``--max_steps`` and export; returns the last step.

    A run whose checkpoint already reaches ``--max_steps`` (killed after its
    last checkpoint but before the export) trains nothing and exports.

    Raises:
      TrainingDiverged: a non-finite loss (the last good checkpoint stays as it is).
    """
    start_step = int(checkpoint.step.numpy())
    if start_step >= args.max_steps:
        print(f"[train] checkpoint step {start_step} already reaches --max_steps={args.max_steps}", flush=True)
    else:
        train_steps(args, ctx, data, train_indices, model, optimizer, checkpoint, manager, run_log, start_step)
    if ctx.is_chief and not args.benchmark:
        path = os.path.join(args.model_dir, EXPORT_FILE)
        model.save(path)
        print(f"[train] exported {path} at step {int(checkpoint.step.numpy())} (keras.models.load_model "
              "needs no code of this repository)", flush=True)
    return max(start_step, args.max_steps)


def train_steps(args, ctx, data, train_indices, model, optimizer, checkpoint, manager, run_log, start_step):
    """Steps ``start_step + 1 .. --max_steps``, with logs, checkpoints and the benchmark figures.

    The tile stream starts at batch ``start_step``, so a resumed run sees the
    batches an uninterrupted run would have seen (same --batch_size and ranks).
    """
    out = unet.output_size(args.tile_size)
    shard = ctx.shard(train_indices)
    if not shard:
        raise UserError(f"RANK_SIZE={ctx.ranks.rank_size} is more than the {len(train_indices)} training slices")
    dataset = pipeline.train_dataset([data.images[i] for i in shard], [data.labels[i] for i in shard],
                                     args.tile_size, out, data.n_classes, args.batch_size, args.seed,
                                     augment=args.augment, rank_id=ctx.ranks.rank_id, start_batch=start_step)

    def loss_fn(images, onehot):
        logits = model(images, training=True)
        return losses.total_loss(logits, onehot, model.trainable_variables, args.weight_decay)

    train_step = npu_utils.make_train_step(ctx, model, optimizer, loss_fn)
    global_batch = args.batch_size * ctx.ranks.rank_size
    save = ctx.is_chief and not args.benchmark
    step_seconds, start, interval_start, interval_steps = [], time.perf_counter(), time.perf_counter(), 0
    iterator = iter(dataset)
    for step in range(start_step + 1, args.max_steps + 1):
        images, onehot = next(iterator)
        step_start = time.perf_counter()
        loss = float(train_step(images, onehot))
        step_seconds.append(time.perf_counter() - step_start)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss} at step {step}; stopped without saving, the last good "
                                   f"checkpoint is {manager.latest_checkpoint or 'none'}")
        checkpoint.step.assign(step)
        interval_steps += 1
        if step % args.log_every == 0 or step == args.max_steps:
            now = time.perf_counter()
            images_per_sec = interval_steps * global_batch / (now - interval_start)
            print(npu_utils.format_step_line(step, loss, images_per_sec, now - start), flush=True)
            run_log.record(step, {"loss": loss, "images_per_sec": images_per_sec})
            interval_start, interval_steps = now, 0
        if save and step % args.checkpoint_every == 0:
            manager.save(checkpoint_number=step)
    if save and int(checkpoint.step.numpy()) % args.checkpoint_every:
        manager.save(checkpoint_number=int(checkpoint.step.numpy()))
    if args.benchmark:
        report_benchmark(benchmark.benchmark_statistics(step_seconds, global_batch, args.warmup_steps),
                         args.max_steps, run_log)


def report_benchmark(stats, step, run_log):
    """One METRIC line per benchmark figure, also in the JSON lines and TensorBoard."""
    for name, value in stats.items():
        print(npu_utils.format_metric_line(name, value), flush=True)
    run_log.record(step, stats)


def evaluate(args, data, validation_indices, probability_fn, step, run_log):
    """Metrics of the validation slices at native resolution, printed as METRIC lines."""
    probabilities = predict_images(probability_fn, [data.images[i] for i in validation_indices], args)
    metrics = losses.segmentation_metrics(np.stack(probabilities),
                                          np.stack([data.labels[i] for i in validation_indices]),
                                          data.n_classes)
    for name, value in metrics.items():
        print(npu_utils.format_metric_line(name, value), flush=True)
    run_log.record(step, metrics)
    return metrics


def predict(args, data, probability_fn):
    """Masks of the test images in ``--model_dir/predictions``, with PNG overlays.

    ISBI: ``test-masks.tif``, (N, 512, 512) uint8, 255 = cell, 0 = membrane,
    like the labels. Own data: one PNG of class indices per test image.
    """
    if not data.test_images:
        raise UserError(f"--data_dir={args.data_dir}: no test images to predict "
                        "(test-volume.tif, or a test/ folder for own data)")
    folder = os.path.join(args.model_dir, "predictions")
    os.makedirs(folder, exist_ok=True)
    classes = [p.argmax(-1).astype(np.uint8) for p in predict_images(probability_fn, data.test_images, args)]
    if data.source == "isbi":
        path = os.path.join(folder, data.test_names[0])
        tiff.write_stack(path, np.stack(classes) * 255)
        written = [path]
    else:
        written = [os.path.join(folder, name) for name in data.test_names]
        for path, mask in zip(written, classes):
            Image.fromarray(mask).save(path)
    for index, (image, mask) in enumerate(list(zip(data.test_images, classes))[:OVERLAY_SLICES]):
        overlay = np.repeat(image[..., None], 3, axis=-1)
        overlay[mask == 0] = (0.5 * overlay[mask == 0] + [127, 0, 0]).astype(np.uint8)  # class 0 in red
        written.append(os.path.join(folder, f"overlay_{index:03d}.png"))
        Image.fromarray(overlay).save(written[-1])
    print(f"[predict] wrote {', '.join(written)}", flush=True)


def benchmark_inference(args, probability_fn, run_log):
    """Time ``--warmup_steps + --max_steps`` batches of random tiles through the network."""
    rng = np.random.default_rng(args.seed)
    batch = rng.uniform(-1, 1, (args.batch_size, args.tile_size, args.tile_size, 1)).astype(np.float32)
    step_seconds = []
    for _ in range(args.warmup_steps + args.max_steps):
        start = time.perf_counter()
        probability_fn(batch)
        step_seconds.append(time.perf_counter() - start)
    report_benchmark(benchmark.benchmark_statistics(step_seconds, args.batch_size, args.warmup_steps),
                     0, run_log)


def run(args, ctx, data):
    """Run ``--exec_mode``.

    Raises:
      UserError: a flag that does not fit the data or the checkpoints.
      TrainingDiverged: a non-finite loss.
    """
    if args.crossvalidation_idx is not None and len(data.images) < folds.NUM_FOLDS:
        raise UserError(f"--crossvalidation_idx={args.crossvalidation_idx} needs at least {folds.NUM_FOLDS} "
                        f"training slices/images ({folds.NUM_FOLDS} folds) but --data_dir={args.data_dir} "
                        f"holds {len(data.images)}; leave --crossvalidation_idx out to train on all of them")
    train_indices, validation_indices = folds.fold_split(len(data.images), args.crossvalidation_idx, args.seed)
    model, optimizer, checkpoint, manager = build(args, ctx, data.n_classes)
    trains = args.exec_mode.startswith("train")
    if ctx.is_chief:
        if trains and manager.latest_checkpoint and not args.resume_training and not args.benchmark:
            raise UserError(f"--model_dir={args.model_dir} already holds {manager.latest_checkpoint}; pass "
                            "--resume_training to continue it or choose another --model_dir")
        if trains:  # evaluate and predict keep the training run's config.json
            flags.write_config(args)
    run_log = RunLog(args, ctx.is_chief)
    resume = args.resume_training or not trains
    if resume and manager.latest_checkpoint:
        error = npu_utils.restore_checkpoint(checkpoint, manager.latest_checkpoint)
        if error:
            raise UserError(f"{manager.latest_checkpoint} does not fit this network (--base_filters and the "
                            f"class count must be those of its training run, in {flags.CONFIG_FILE} there; "
                            f"--tile_size may differ): {error}")
        print(f"[run] restored {manager.latest_checkpoint} (step {int(checkpoint.step.numpy())})", flush=True)
    elif not trains and not args.benchmark:
        raise UserError(f"--model_dir={args.model_dir}: no checkpoint to {args.exec_mode} with")
    elif trains and args.pretrained_checkpoint:
        load_pretrained(model, args.pretrained_checkpoint)
    # Only rank 0 has checkpoints: every rank continues from its weights and step.
    ctx.broadcast_variables(model.weights + optimizer.variables + [checkpoint.step])

    step = int(checkpoint.step.numpy())
    if trains:
        step = train(args, ctx, data, train_indices, model, optimizer, checkpoint, manager, run_log)
    if not ctx.is_chief:
        return
    probability_fn = make_probability_fn(model, ctx.use_xla)
    if args.benchmark and not trains:
        benchmark_inference(args, probability_fn, run_log)
        return
    if args.exec_mode in ("evaluate", "train_and_evaluate"):
        evaluate(args, data, validation_indices, probability_fn, step, run_log)
    if args.exec_mode in ("predict", "train_and_predict"):
        predict(args, data, probability_fn)
