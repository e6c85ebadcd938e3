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
"""The run modes on a :class:`runtime.session.Session`: train, evaluate, predict, the inference benchmark.

Training uses common/npu_utils.make_train_step (XLA, loss scaling, gradient
averaging over workers) and common/npu_utils.StepTimer (wall-clock images/s,
input pipeline included).
"""

import math
import os
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from common import npu_utils
from common.npu_utils import UserError
from data_loading import pipeline, tiff, tiles
from runtime import benchmark, flags, losses

# keras.models.load_model reads it without this repository's code: unet.keras (Keras 3) or unet.h5 (Keras 2.6).
EXPORT_FILE = "unet" + npu_utils.MODEL_FILE_SUFFIX
OVERLAY_SLICES = 3  # PNG overlays written next to the predicted masks


def make_probability_fn(model, use_xla, batch_size):
    """``batch (N, T, T, 1) -> softmax probabilities (N, O, O, C)`` as a NumPy array, N <= ``batch_size``.

    The step always sees ``(batch_size, T, T, 1)``: a smaller batch (the last
    tiles of an image, the last slices) is zero-padded and the padding's
    outputs dropped, so it is traced once (``npu_utils.TRACES["inference"]``)
    whatever the image sizes: an NPU compiles each new shape again.
    """
    probabilities = npu_utils.step_function(lambda batch: tf.nn.softmax(model(batch, training=False)), "inference",
                                            jit_compile=use_xla)

    def probability_fn(batch):
        batch = np.asarray(batch, np.float32)
        if not 0 < len(batch) <= batch_size:
            raise ValueError(f"expected 1 to {batch_size} tiles, got {len(batch)}")
        padding = np.zeros((batch_size - len(batch), *batch.shape[1:]), np.float32)
        return probabilities(tf.constant(np.concatenate([batch, padding]))).numpy()[:len(batch)]

    return probability_fn


def predict_images(session, probability_fn, images):
    """(H, W, C) probabilities of each uint8 (H, W) image at its native size, by ``--input_mode``.

    overlap_tile: tile by tile, stitched. resize (NVIDIA): the image resized
    to the output size and zero-padded, one pass, the probabilities resized back.
    """
    args, out = session.args, session.out
    if args.input_mode == "overlap_tile":
        return [tiles.predict_tiled(probability_fn, tiles.normalize(image.astype(np.float32)), args.tile_size, out,
                                    batch_size=args.batch_size) for image in images]
    return to_native_size(resized_probabilities(session, probability_fn, images), images)


def to_native_size(probabilities, images):
    """Each (out, out, C) map of NVIDIA's path resized (bilinear) back to its image's (H, W)."""
    return [tf.image.resize(p, image.shape).numpy() for p, image in zip(probabilities, images)]


def resized_probabilities(session, probability_fn, images):
    """NVIDIA's path: (out, out, C) probabilities of each image resized to the output size and zero-padded."""
    args = session.args
    batch = [tiles.resize_and_pad(tiles.normalize(image.astype(np.float32)), session.out, args.tile_size)
             for image in images]
    return [p for first in range(0, len(batch), args.batch_size)
            for p in probability_fn(np.stack(batch[first:first + args.batch_size])[..., None])]


def steps_per_epoch(session):
    """Steps of one epoch: as many tiles as the training fold has slices, over the global batch."""
    global_batch = session.args.batch_size * session.ctx.ranks.rank_size
    return math.ceil(len(session.train_indices) / global_batch)


def total_steps(session):
    """The training's last step: the first of ``--max_steps`` and ``--train_epochs`` it reaches (0 = no cap)."""
    args = session.args
    caps = [args.max_steps] if args.max_steps else []
    if args.train_epochs:
        caps.append(args.train_epochs * steps_per_epoch(session))
        print(f"[train] --train_epochs={args.train_epochs}: {steps_per_epoch(session)} steps per epoch "
              f"({len(session.train_indices)} training slices); stops at step {min(caps)}", flush=True)
    flags.check_step_plan(args, min(caps))
    return min(caps)


def train(session, probability_fn):
    """Train from the checkpoint's step to the step cap, then export; returns the last step.

    ``probability_fn`` (:func:`make_probability_fn`) scores the validation fold every ``--evaluate_every`` steps.

    A run whose checkpoint already reaches the cap (killed after its last
    checkpoint but before the export) trains nothing and exports.

    Raises:
      npu_utils.TrainingDiverged: a non-finite loss (the last good checkpoint stays as it is).
    """
    args, start_step, last_step = session.args, session.step, total_steps(session)
    if start_step >= last_step:
        cap = (f"--max_steps={last_step}" if last_step == args.max_steps
               else f"step {last_step} (--train_epochs={args.train_epochs})")
        print(f"[train] checkpoint step {start_step} already reaches {cap}", flush=True)
    else:
        try:
            train_steps(session, start_step, last_step, probability_fn)
        finally:
            if session.checkpoints:  # a non-chief worker's scratch checkpoints go, also after a failure
                session.checkpoints.close()
    if session.ctx.is_chief and not args.benchmark:
        path = os.path.join(args.model_dir, EXPORT_FILE)
        session.model.save(path)
        print(f"[train] exported {path} at step {session.step} (keras.models.load_model "
              "needs no code of this repository)", flush=True)
    return max(start_step, last_step)


def _train_dataset(session, start_step):
    args, ctx, data = session.args, session.ctx, session.data
    shard = ctx.shard(session.train_indices)
    if not shard:
        raise UserError(f"RANK_SIZE={ctx.ranks.rank_size} is more than the {len(session.train_indices)} "
                        "training slices")
    return pipeline.train_dataset([data.images[i] for i in shard], [data.labels[i] for i in shard],
                                  args.tile_size, session.out, data.n_classes, args.batch_size, args.seed,
                                  augment=args.augment, rank_id=ctx.ranks.rank_id, start_batch=start_step,
                                  augment_set=args.augment_set, input_mode=args.input_mode)


def train_steps(session, start_step, last_step, probability_fn):
    """Steps ``start_step + 1 .. last_step``, with TRAIN lines, checkpoints, the benchmark figures and
    (chief, every ``--evaluate_every`` steps) the validation fold's metrics.

    The tile stream starts at batch ``start_step``, so a resumed run sees the
    batches an uninterrupted run would have seen (same --batch_size and ranks).
    """
    args, ctx, model, checkpoint = session.args, session.ctx, session.model, session.checkpoint

    def loss_fn(images, onehot):
        return losses.total_loss(model(images, training=True), onehot, model.trainable_variables,
                                 args.weight_decay)

    train_step = npu_utils.make_train_step(ctx, model, session.optimizer, loss_fn)
    global_batch = args.batch_size * ctx.ranks.rank_size
    checkpoints = session.checkpoints  # None for --benchmark: no checkpoints
    iterator = iter(_train_dataset(session, start_step))
    timer = npu_utils.StepTimer(global_batch, first_step=start_step)
    step_seconds, step_start = [], time.perf_counter()
    for step in range(start_step + 1, last_step + 1):
        logs = step % args.log_every == 0 or step == last_step
        # The L2 term of this step's loss, from the weights before the update (the same on every worker),
        # so that the logged loss is NVIDIA's cross-entropy + Dice loss with the L2 term beside it.
        l2_loss = float(losses.weight_decay_loss(model.trainable_variables, args.weight_decay)) if logs else 0.0
        loss = float(train_step(*next(iterator)))
        if not math.isfinite(loss):
            last_good = checkpoints.manager.latest_checkpoint if checkpoints else None
            raise npu_utils.TrainingDiverged(
                f"loss is {loss} at step {step}; stopped without saving, the last good checkpoint is "
                f"{last_good or 'none'}")
        checkpoint.step.assign(step)
        now = time.perf_counter()
        step_seconds.append(now - step_start)  # wall clock, input pipeline included, as the StepTimer
        step_start = now
        if logs:
            print(f"{timer.line(step, loss - l2_loss)} l2_loss={l2_loss:.6f}", flush=True)
            session.log.record(step, {"loss": loss - l2_loss, "l2_loss": l2_loss, "images_per_sec": timer.last_rate},
                               (step, last_step))
        if args.evaluate_every and step % args.evaluate_every == 0 and ctx.is_chief:
            with timer.paused():  # images/s and the step times count training alone
                evaluate(session, probability_fn, step)
            step_start = time.perf_counter()
        if checkpoints and step % args.checkpoint_every == 0:  # every worker saves, at the same steps
            checkpoints.save(step)
    if checkpoints and session.step % args.checkpoint_every:
        checkpoints.save(session.step)
    if args.benchmark:
        report_benchmark(session, benchmark.benchmark_statistics(step_seconds, global_batch, args.warmup_steps),
                         last_step)


def report_benchmark(session, stats, step):
    """One METRIC line per benchmark figure, also in the JSON lines and TensorBoard."""
    for name, value in stats.items():
        print(npu_utils.format_metric_line(name, value), flush=True)
    session.log.record(step, stats)


def evaluate(session, probability_fn, step):
    """Metrics of the validation slices, printed as METRIC lines; returns them.

    ``eval_dice_score``, ``eval_ce_loss``, ``eval_dice_loss`` and
    ``eval_total_loss`` are NVIDIA's figures (:func:`runtime.losses.nvidia_eval_losses`)
    at the network's output on the run's input path: exactly NVIDIA's with
    ``--input_mode=resize`` (slices and labels resized to the output size),
    the same formula on the stitched native-size probabilities with
    overlap tiles. ``dice``, ``dice_soft``, ``iou`` and ``pixel_error`` are at
    native resolution. Images of different sizes are scored one by one.
    """
    args, data = session.args, session.data
    images = [data.images[i] for i in session.validation_indices]
    labels = [data.labels[i] for i in session.validation_indices]
    if args.input_mode == "resize":
        at_output = resized_probabilities(session, probability_fn, images)
        output_labels = [tiles.resize_labels(label, data.n_classes, session.out) for label in labels]
        native = to_native_size(at_output, images)
    else:
        native = predict_images(session, probability_fn, images)
        at_output, output_labels = native, labels
    metrics = {**losses.nvidia_eval_losses(at_output, output_labels, data.n_classes, args.batch_size),
               **losses.segmentation_metrics(native, labels, data.n_classes)}
    for name, value in metrics.items():
        print(npu_utils.format_metric_line(name, value), flush=True)
    session.log.record(step, metrics)
    return metrics


def predict(session, probability_fn):
    """Masks of the test images in ``--model_dir/predictions``, with PNG overlays.

    ISBI: ``test-masks.tif``, (N, 512, 512) uint8, 255 = cell, 0 = membrane,
    like the labels. Own data: one PNG of class indices per test image.
    """
    args, data = session.args, session.data
    if not data.test_images:
        raise UserError(f"--data_dir={args.data_dir}: no test images to predict "
                        "(test-volume.tif, or a test/ folder for own data)")
    folder = os.path.join(args.model_dir, "predictions")
    os.makedirs(folder, exist_ok=True)
    classes = [p.argmax(-1).astype(np.uint8) for p in predict_images(session, probability_fn, data.test_images)]
    if data.source == "isbi":
        written = [os.path.join(folder, data.test_names[0])]
        tiff.write_stack(written[0], np.stack(classes) * 255)
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


def benchmark_inference(session, probability_fn):
    """Time ``--warmup_steps + --max_steps`` batches of random tiles through the network."""
    args = session.args
    rng = np.random.default_rng(args.seed)
    batch = rng.uniform(-1, 1, (args.batch_size, args.tile_size, args.tile_size, 1)).astype(np.float32)
    step_seconds = []
    for _ in range(args.warmup_steps + args.max_steps):
        start = time.perf_counter()
        probability_fn(batch)
        step_seconds.append(time.perf_counter() - start)
    report_benchmark(session, benchmark.benchmark_statistics(step_seconds, args.batch_size, args.warmup_steps), 0)
