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
"""One run's state (a :class:`Session`): data split, network, optimizer, checkpoints, logs; restore-or-start.

A training's checkpoints follow the rules every model shares
(common/npu_utils.RunCheckpoints: ``--model_dir/checkpoints/ckpt-<step>``,
written atomically), so a run killed at any moment resumes from its last
checkpoint with ``--resume``. ``config.json`` is written here, by training only, once every
check passed and the restore succeeded (THE RULE of common/npu_utils).
"""

import dataclasses
import datetime
import functools
import json
import os
import time

import tensorflow as tf

from common import npu_utils
from common.npu_utils import UserError, keras
from data_loading import folds, readers
from model import tile_sizes, unet
from runtime import flags, run

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

    def __init__(self, args, is_chief):
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

    def record(self, step, values, nvidia_step=()):
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
class Session:
    """Everything the modes share; built once by :func:`create`.

    Attributes:
      args: the parsed flags; ctx: common/npu_utils.RunContext;
      data: readers.SegmentationData.
      out: the network's output side for ``args.tile_size`` (572 -> 388),
        worked out here only.
      train_indices, validation_indices: the fold split of ``data.images``.
      model, optimizer, checkpoint (with its ``step``), log.
      checkpoints: the run folder's npu_utils.RunCheckpoints (training only, None otherwise).
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

    @property
    def step(self):
        return int(self.checkpoint.step.numpy())


def create(args, ctx, data):
    """Check the data against the flags, split the folds, build the network under the strategy.

    Raises:
      UserError: an image smaller than one output window, or too few slices for a fold.
    """
    out = tile_sizes.output_size(args.tile_size)
    if args.input_mode == "overlap_tile":  # the resize path brings any size to the output size
        readers.check_min_size(data, out)
    train_indices, validation_indices = [], []  # predict alone reads no training slices
    if data.images:
        train_indices, validation_indices = folds.fold_split(len(data.images), args.crossvalidation_idx, args.seed,
                                                             source=f"--data_dir={args.data_dir}",
                                                             scheme=args.fold_scheme)
    with ctx.strategy.scope():
        model = unet.build_unet(base_filters=args.base_filters, tile_size=args.tile_size,
                                n_classes=data.n_classes)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
        # Build the optimizer's slots now so that a checkpoint restores them.
        npu_utils.build_optimizer(optimizer, model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer)
    # Every worker has its RunCheckpoints: under several workers each one saves (common/checkpoints.py).
    checkpoints = (npu_utils.RunCheckpoints(checkpoint, model, args.model_dir, ctx, keep=args.keep_checkpoints)
                   if flags.trains(args) and not args.benchmark else None)
    return Session(args, ctx, data, out, train_indices, validation_indices, model, optimizer, checkpoint,
                   checkpoints, RunLog(args, ctx.is_chief))


def check_readable(prefix):
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


def _restore_weights(session, prefix):
    """Restore the weights and step of ``prefix`` for evaluate and predict, also from a checkpoint
    written on the other stack (its portable weights file)."""
    check_readable(prefix)
    error = npu_utils.restore_checkpoint(session.checkpoint, prefix, model=session.model)
    if error:
        # With the run's config.json the network's flags came from there; without it they may be wrong.
        hint = ("" if npu_utils.read_run_config(session.args.model_dir) is not None else
                f" (no {npu_utils.RUN_CONFIG} there: give the --base_filters and --n_classes of its training run)")
        raise UserError(f"{prefix} cannot be restored here: {error}{hint}")
    # The other stack's portable weights leave the step at 0: read it directly.
    session.checkpoint.step.assign(tf.train.load_checkpoint(prefix).get_tensor(STEP_KEY))
    print(f"[run] restored {prefix} (step {session.step})", flush=True)


def _load_export(session):
    """``--use_savedmodel``: the weights of the model file training exported (NVIDIA reads its SavedModel).

    Raises:
      UserError: no export in ``--model_dir`` (for instance one written on the other stack).
    """
    path = os.path.join(session.args.model_dir, run.EXPORT_FILE)
    if not os.path.isfile(path):
        raise UserError(f"--use_savedmodel: no {path} (training writes it at its end, {run.EXPORT_FILE} on this "
                        "stack); train to the end or leave out --use_savedmodel to use the last checkpoint")
    session.model.load_weights(path)
    print(f"[run] weights of {path} (--use_savedmodel)", flush=True)


def restore_or_start(session):
    """Restore the latest checkpoint, start over, or start fresh, as the mode and ``--resume`` ask.

    Training follows npu_utils.RunCheckpoints.restore_or_start (True:
    continue, False: delete the checkpoints and start over, not given: refuse
    a folder that holds one); evaluate and predict always restore. Then every
    rank takes rank 0's variables, and a training chief writes config.json
    (THE RULE: after all checks and the restore).

    Raises:
      UserError: a checkpoint in the way, none to evaluate with, or one that
        is unreadable or does not fit.
    """
    args, ctx = session.args, session.ctx
    trains = flags.trains(args)
    if session.checkpoints is not None:
        if args.resume and session.checkpoints.latest:
            check_readable(session.checkpoints.latest)  # a damaged file named as such, not as a misfit
        session.checkpoints.restore_or_start(args.resume, log=functools.partial(print, flush=True))
    elif not trains and ctx.is_chief and args.use_savedmodel:
        _load_export(session)
    elif not trains and ctx.is_chief:
        latest = npu_utils.latest_checkpoint(args.model_dir)
        if latest:
            _restore_weights(session, latest)
        elif not args.benchmark:
            raise UserError(f"--model_dir={args.model_dir}: no checkpoint to {args.exec_mode} with")
    if trains and not session.step and args.pretrained_checkpoint:
        load_pretrained(session.model, args.pretrained_checkpoint)
    # The same start on every rank, whatever each one's view of the run folder (and of a pretrained run).
    ctx.broadcast_variables(session.model.weights + npu_utils.optimizer_variables(session.optimizer)
                            + [session.checkpoint.step])
    if trains and ctx.is_chief and not args.benchmark:
        npu_utils.write_run_config(args.model_dir, vars(args))
    return session.step


def load_pretrained(model, source_dir):
    """Copy an earlier run's weights into ``model``, all layers but ``logits`` when the classes differ.

    Raises:
      UserError: no config.json / checkpoint there, or a different architecture.
    """
    config = npu_utils.read_run_config(source_dir)
    latest = npu_utils.latest_checkpoint(source_dir) if config is not None else None
    if latest is None:
        raise UserError(f"--pretrained_checkpoint={source_dir}: expected the --model_dir of an earlier "
                        f"run, with {npu_utils.RUN_CONFIG} and a checkpoint")
    check_readable(latest)
    source = unet.build_unet(base_filters=config["base_filters"], tile_size=model.input_shape[1],
                             n_classes=config["n_classes"])
    # Weights only (the source's optimizer state is not wanted), also from a run of the other stack.
    error = npu_utils.restore_checkpoint(tf.train.Checkpoint(model=source), latest, partial=True, model=source)
    if error:
        raise UserError(f"--pretrained_checkpoint={source_dir}: {latest} cannot be read into the network of its "
                        f"{npu_utils.RUN_CONFIG}: {error}")
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
