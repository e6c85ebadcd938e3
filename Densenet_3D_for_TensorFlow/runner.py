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
"""The run modes: set-up, data preparation, training with checkpoints, test and predict.

``main.py`` calls, in order: :func:`setup`, :func:`prepare_data`,
:func:`build_network`, then :func:`train`, :func:`test` and/or :func:`predict`.
Training is three parts: :func:`restore_or_start` (resume, start over or
fine-tune), the loop in :func:`train`, and :func:`train_epoch` (one epoch's
patches from the step it left off).
"""

import dataclasses
import json
import math
import os
import shutil
import time

import numpy as np
import tensorflow as tf

import brats_data
import config
import inference
import metrics
import n4_correction
import tf_models
from common import npu_utils
from common.npu_utils import TrainingDiverged, UserError, keras


def setup(args):
    """The device, precision and ranks (common/npu_utils), and one seed for NumPy, Python and TensorFlow."""
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu  # as the reference's -gpu
    ctx = npu_utils.setup_device(args)
    if args.gpu is not None and ctx.device != "gpu":
        print(f"[device] -gpu {args.gpu} has no effect on {ctx.device.upper()}", flush=True)
    npu_utils.set_random_seed(args.seed)
    return ctx


@dataclasses.dataclass
class RunData:
    """The checked cases of a run and the files to read for each (N4-corrected or original)."""

    train_cases: list
    test_cases: list
    image_paths: dict  # case_id -> {modality: path} or None for the original files
    skipped_case_ids: list = dataclasses.field(default_factory=list)  # bad cases left out (--skip_bad_cases)
    val_cases: list = dataclasses.field(default_factory=list)  # --val_cases, taken out of the training list


def prepare_data(args, ctx, log=print):
    """Discover and check the cases, choose the split, and run N4 when ``-nc`` is on.

    In predict mode every case of ``--data_path`` is a test case and needs no label. Training takes the
    --val_cases out of the training list.
    """
    cases, schemes, skipped = brats_data.discover_cases(args.data_path, args.skip_bad_cases,
                                                        need_label=args.mode != "predict", log=log)
    log(f"[data] {args.data_path}: {schemes}")
    if args.mode == "predict":
        train_cases, test_cases = [], brats_data.check_cases(cases, args.skip_bad_cases, need_label=False,
                                                             workers=args.workers, log=log)
        skipped += [case.case_id for case in cases if case not in test_cases]
        val_cases = []
    else:
        by_id = {case.case_id: case for case in cases}
        train_ids, test_ids, where = brats_data.split_cases(list(by_id), args.data_path, args.model_dir, args.seed)
        log(f"[data] {len(train_ids)} training and {len(test_ids)} test cases from {where}")
        val_ids = []
        if args.mode in ("train", "train_test") and not args.benchmark:
            val_ids = brats_data.validation_subset(train_ids, args.val_cases, args.seed)
        if val_ids:
            if ctx.ranks.rank_size > 1:
                raise UserError(f"--val_cases={args.val_cases}: validation runs on one rank only "
                                f"(RANK_SIZE={ctx.ranks.rank_size}); validate with --mode test instead")
            train_ids = [i for i in train_ids if i not in val_ids]
            log(f"[data] {len(val_ids)} of them for validation (--val_cases={args.val_cases}): {', '.join(val_ids)}")
        if args.mode == "test" and where.startswith("a seeded"):
            log("[data] warning: no train.txt/test.txt in --data_path or --model_dir, so the split is new; "
                "weights trained elsewhere may have seen some of these test cases")
        wanted = (train_ids + val_ids if args.mode in ("train", "train_test") else []) + \
                 (test_ids if args.mode in ("test", "train_test") and not args.benchmark else [])
        good = {c.case_id for c in brats_data.check_cases([by_id[i] for i in wanted], args.skip_bad_cases,
                                                          workers=args.workers, log=log)}
        skipped += [i for i in wanted if i not in good]
        train_cases = [by_id[i] for i in train_ids if i in good and args.mode in ("train", "train_test")]
        test_cases = [by_id[i] for i in test_ids if i in good and args.mode in ("test", "train_test")]
        val_cases = [by_id[i] for i in val_ids if i in good]
        if args.mode in ("train", "train_test") and not train_cases:
            raise UserError(f"no training cases in {args.data_path} ({where})")
        if args.mode in ("test", "train_test") and not test_cases and not args.benchmark:
            raise UserError(f"no test cases in {args.data_path} ({where})")
    image_paths = {case.case_id: None for case in train_cases + test_cases + val_cases}
    if args.n4_correction:
        # Each rank corrects the cases it reads: its training share, and the chief the test cases.
        mine = ctx.shard(train_cases) + (test_cases + val_cases if ctx.is_chief else [])
        image_paths.update(n4_correction.correct_cases(mine, args.n4_cache_dir, args.workers, log=log))
    else:
        log("[data] N4 bias-field correction off: reading the original volumes")
    return RunData(train_cases=train_cases, test_cases=test_cases, image_paths=image_paths,
                   skipped_case_ids=skipped, val_cases=val_cases)


def build_network(args, ctx):
    """The model and its Adam optimizer (variables built, so checkpoints restore them at once)."""
    with ctx.strategy.scope():
        model = tf_models.build_model(args.model_name, width_multiplier=args.width_multiplier)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
        npu_utils.build_optimizer(optimizer, model.trainable_variables)
    return model, optimizer


def _resolve_checkpoint(path):
    """A checkpoint prefix from a run folder (its newest), its checkpoints/ folder (likewise), or a prefix."""
    if os.path.exists(path + ".index"):
        return path
    folder = os.path.normpath(path)
    return npu_utils.latest_checkpoint(os.path.dirname(folder) if os.path.basename(folder) == "checkpoints"
                                       else folder)


def load_weights(model, path, flag="-lp"):
    """Restore only the model's weights from a checkpoint (fine-tuning or test)."""
    prefix = _resolve_checkpoint(path)
    if prefix is None:
        raise UserError(f"{flag} {path}: no checkpoint there (expected a run's model_dir, its checkpoints/ "
                        "folder or a checkpoint prefix such as .../ckpt-100)")
    error = npu_utils.restore_checkpoint(tf.train.Checkpoint(model=model), prefix, partial=True, model=model)
    if error:
        raise UserError(f"{flag} {prefix}: does not fit -mn {model.name} (--width_multiplier too?): {error}")
    return prefix


def make_loss_fn(model):
    """``loss_fn(images, labels) -> scalar``: CE of the 2-class head + CE of the 5-class head.

    images (N, X, Y, Z, 4) float32; labels (N, x, y, z) int32 in 0..4 over the
    labelled centre. Each CE is the mean over the local batch's voxels.
    """
    def cross_entropy(labels, logits):
        # The loss function, not the Loss class: under a tf.distribute strategy
        # the class divides by the replica count, and make_train_step averages already.
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    def loss_fn(images, labels):
        outputs = model(images, training=True)
        return cross_entropy(tf.cast(labels > 0, tf.int32), outputs["wt"]) + cross_entropy(labels, outputs["labels"])

    return loss_fn


BEST_FOLDER = "best"  # <model_dir>/best: the best validation's weights, beside checkpoints/ (the last)
BEST_RECORD = "best.json"  # in BEST_FOLDER: its step, checkpoint name and Dice
VALIDATION_EVENTS = os.path.join("tensorboard", "validation")  # in <model_dir>: the [val] figures for TensorBoard


def read_best(run_dir):
    """``(prefix, record)`` of the best validation weights of run folder ``run_dir``, or None without any.

    Raises:
      UserError: the record names a checkpoint whose files are gone.
    """
    folder = os.path.join(run_dir, BEST_FOLDER)
    path = os.path.join(folder, BEST_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    prefix = os.path.join(folder, record["checkpoint"])
    if not os.path.isfile(prefix + ".index"):
        raise UserError(f"{path} names {prefix}, whose .index file is missing; --test_weights=last takes the "
                        "last checkpoint")
    return prefix, record


class Validation:
    """Scores the --val_cases during training and keeps the weights of the best mean Dice.

    Call it with the step: it predicts every validation case (--inference),
    logs the mean Dice per region and over the regions (also as TensorBoard
    scalars ``val_dice_<region>`` and ``val_dice_mean`` in
    ``<model_dir>/tensorboard/validation``), and when that mean is
    the best so far saves the weights to ``<model_dir>/best`` (a checkpoint with
    its portable weights, one kept) and :data:`BEST_RECORD`. A continued run
    keeps its best (:func:`restore_or_start` removes an earlier run's on a fresh start).
    """

    def __init__(self, args, model, cases, image_paths, log=print):
        self.args, self.model, self.cases, self.image_paths, self.log = args, model, cases, image_paths, log
        self.folder = os.path.join(args.model_dir, BEST_FOLDER)
        best = read_best(args.model_dir)
        self.best_dice = best[1]["mean_dice"] if best else -1.0
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), self.folder, max_to_keep=1,
                                                  checkpoint_name="ckpt")
        self.writer = None  # opened at the first validation, so that a run that fails earlier leaves no folder

    def __call__(self, step):
        args = self.args
        model = self.model
        if args.inference == "block":  # a fresh copy of the current weights
            model = tf_models.inference_twin(model, args.model_name, args.width_multiplier)
        predict_fn = inference.make_predict_fn(model, "validate")
        dice = []
        for case in self.cases:
            loaded = brats_data.load_case(case, self.image_paths[case.case_id])
            labels = inference.predict_labels(predict_fn, loaded.image, args.inference, args.block_size,
                                              args.window_batch)
            dice.append([metrics.dice(select(labels), select(loaded.label)) for select in metrics.REGIONS.values()])
        per_region = dict(zip(metrics.REGIONS, np.mean(dice, axis=0).tolist()))
        mean = sum(per_region.values()) / len(per_region)
        self.writer = self.writer or tf.summary.create_file_writer(os.path.join(args.model_dir, VALIDATION_EVENTS))
        with self.writer.as_default():
            for name, value in [*per_region.items(), ("mean", mean)]:
                tf.summary.scalar(f"val_dice_{name}", value, step=step)
        self.writer.flush()
        line = (f"[val] step {step}: Dice " + " ".join(f"{r.upper()} {d:.4f}" for r, d in per_region.items()) +
                f", mean {mean:.4f} over {len(self.cases)} case(s)")
        if mean > self.best_dice:
            prefix = npu_utils.save_checkpoint(self.manager, self.model, step)
            record = dict(step=step, checkpoint=os.path.basename(prefix), mean_dice=mean,
                          **{f"{r}_dice": d for r, d in per_region.items()})
            partial = os.path.join(self.folder, BEST_RECORD + ".partial")
            with open(partial, "w", encoding="utf-8") as handle:
                json.dump(record, handle, indent=1)
            os.replace(partial, os.path.join(self.folder, BEST_RECORD))
            self.best_dice = mean
            line += f"; the best so far: {prefix}"
        self.log(line)


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
    steps_per_epoch = cases_per_rank * (args.tumour_centres + args.background_centres) // args.batch_size
    total_steps = args.epochs * steps_per_epoch
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
        loaded = brats_data.load_case(case, state.image_paths[case.case_id])
        return loaded.image, loaded.label

    dataset = brats_data.patch_dataset(
        load_fn, len(state.cases), num_tumour=args.tumour_centres, num_background=args.background_centres,
        patch_size=(args.patch_width, args.patch_height, args.patch_depth), label_size=(args.label_size,) * 3,
        batch_size=args.batch_size, seed=args.seed, epoch=epoch,
    ).take(state.steps_per_epoch).skip(state.step % state.steps_per_epoch)
    for images, labels in dataset:
        loss = float(train_step(images, labels))
        if not math.isfinite(loss):
            last_good = (state.checkpoints and state.checkpoints.manager.latest_checkpoint) or "none"
            raise TrainingDiverged(f"non-finite loss {loss} at step {state.step + 1}; stopped without saving, the "
                                   f"last good checkpoint is {last_good}")
        state.step += 1
        state.checkpoint.step.assign(state.step)
        if state.first_step_sec is None or state.step % args.log_every_steps == 0 or \
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
        config.save_run_config(args, ctx)
    global_batch = args.batch_size * ctx.ranks.rank_size
    log(f"[train] {args.model_name}: {len(state.cases)} cases on this rank, {state.steps_per_epoch} steps per "
        f"epoch, steps {state.step} -> {state.total_steps}, batch {args.batch_size} x {ctx.ranks.rank_size} rank(s)")
    train_step = npu_utils.make_train_step(ctx, model, optimizer, make_loss_fn(model))
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


def _restore_for_inference(args, model, trained_here):
    """Put the weights --test_weights asks for into ``model`` and say which they are: the run's best
    validation weights when it has them (not when -lp names a checkpoint), else its last checkpoint."""
    explicit = args.load_path and os.path.isfile(args.load_path + ".index")
    best = read_best(config.weights_run_folder(args)) if args.test_weights == "best" and not explicit else None
    if best:
        load_weights(model, best[0], flag="--test_weights=best")
        print(f"[{args.mode}] weights: the best validation, {best[0]} (step {best[1]['step']}, mean Dice "
              f"{best[1]['mean_dice']:.4f}); --test_weights=last takes the last checkpoint")
    elif trained_here:
        print(f"[{args.mode}] weights: this training's last step")
    else:
        if args.load_path:
            log_path = load_weights(model, args.load_path)
        else:
            log_path = load_weights(model, args.model_dir, flag="--model_dir")
        print(f"[{args.mode}] weights: the last checkpoint, {log_path}")


def _run_inference(args, model, cases, data, with_truth, log):
    os.makedirs(args.save_path, exist_ok=True)
    if args.inference == "block":
        model = tf_models.inference_twin(model, args.model_name, args.width_multiplier)
    predict_fn = inference.make_predict_fn(model, f"{args.inference}_predict")
    rows = []
    for case in cases:
        loaded = brats_data.load_case(case, data.image_paths[case.case_id], with_label=with_truth)
        started = time.time()
        labels = inference.predict_labels(predict_fn, loaded.image, args.inference, args.block_size,
                                          args.window_batch)
        seconds = time.time() - started
        inference.save_prediction(os.path.join(args.save_path, f"{case.case_id}.nii.gz"),
                                  brats_data.to_file_labels(labels, case), loaded.affine, loaded.header)
        if args.save_png:
            inference.save_png(os.path.join(args.save_path, f"{case.case_id}.png"), loaded.image[..., 0], labels,
                               loaded.label)
        message = f"[{args.mode}] {case.case_id}: {args.inference} inference {seconds:.1f} s"
        if with_truth:
            brain = np.any(loaded.image != 0, axis=-1)  # normalise() keeps the background at 0
            row = dict(metrics.case_metrics(labels, loaded.label, loaded.spacing, brain,
                                            lesion_wise=args.metrics == "brats2023"), case=case.case_id)
            rows.append(row)
            message += f", Dice WT {row['wt_dice']:.4f} TC {row['tc_dice']:.4f} ET {row['et_dice']:.4f}"
        log(message)
    return rows


def test(args, model, data, trained_here=False, log=print):
    """Predict the test cases, save NIfTI/PNG, print the per-case table and METRIC lines, write metrics.csv."""
    _restore_for_inference(args, model, trained_here)
    rows = _run_inference(args, model, data.test_cases, data, with_truth=True, log=log)
    log(metrics.format_table(rows))
    csv_path = os.path.join(args.save_path, "metrics.csv")
    metrics.write_csv(csv_path, rows)
    log(f"[test] per-case metrics in {csv_path}")
    means = metrics.mean_metrics(rows)
    for name in metrics.metric_columns(rows) + metrics.count_columns():
        print(npu_utils.format_metric_line(name, means[name]))
    print(npu_utils.format_metric_line("test_cases", len(rows)), flush=True)
    return rows


def predict(args, model, data, log=print):
    """Label every case of --data_path and save NIfTI (and PNG) into -sp."""
    _restore_for_inference(args, model, trained_here=False)
    _run_inference(args, model, data.test_cases, data, with_truth=False, log=log)
    log(f"[predict] {len(data.test_cases)} predictions in {args.save_path}")
