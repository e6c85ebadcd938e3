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

Checkpoints go through ``tf.train.CheckpointManager`` (written atomically),
so a run killed at any moment resumes from its last checkpoint with
``--resume``. ``config.json`` is written here, by training only, once every
check passed and the restore succeeded (THE RULE of common/npu_utils).
"""

import dataclasses
import glob
import json
import os

import tensorflow as tf

from common import npu_utils
from common.npu_utils import UserError, keras
from data_loading import folds, readers
from model import tile_sizes, unet
from runtime import flags

# The training step in a checkpoint: a variable of the tf.train.Checkpoint itself, so its key is the same
# on both stacks (the model's variables are not).
STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


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


@dataclasses.dataclass
class Session:
    """Everything the modes share; built once by :func:`create`.

    Attributes:
      args: the parsed flags; ctx: common/npu_utils.RunContext;
      data: readers.SegmentationData.
      out: the network's output side for ``args.tile_size`` (572 -> 388),
        worked out here only.
      train_indices, validation_indices: the fold split of ``data.images``.
      model, optimizer, checkpoint (with its ``step``), manager, log.
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
    manager: object
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
    train_indices, validation_indices = folds.fold_split(len(data.images), args.crossvalidation_idx, args.seed,
                                                         source=f"--data_dir={args.data_dir}")
    with ctx.strategy.scope():
        model = unet.build_unet(base_filters=args.base_filters, tile_size=args.tile_size,
                                n_classes=data.n_classes)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
        # Build the optimizer's slots now so that a checkpoint restores them.
        npu_utils.build_optimizer(optimizer, model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, args.model_dir, max_to_keep=args.keep_checkpoints)
    return Session(args, ctx, data, out, train_indices, validation_indices, model, optimizer, checkpoint,
                   manager, RunLog(args, ctx.is_chief))


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


def latest_checkpoint(model_dir):
    """The prefix the ``checkpoint`` state file of ``model_dir`` names, or None when there is none.

    Raises:
      UserError: the state file cannot be parsed or names files that are gone.
    """
    state_file = os.path.join(model_dir, "checkpoint")
    if not os.path.isfile(state_file):
        return None
    try:
        state = tf.train.get_checkpoint_state(model_dir)
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(f"{state_file}: the checkpoint is unreadable ({str(error).splitlines()[0][:200]})") from None
    prefix = state.model_checkpoint_path if state else ""  # TensorFlow joins a relative name to model_dir
    if not prefix:
        raise UserError(f"{state_file}: the checkpoint is unreadable (it names no checkpoint)")
    if not os.path.isfile(prefix + ".index"):
        raise UserError(f"{state_file}: the checkpoint is unreadable (it names {prefix}, whose .index file is "
                        "missing)")
    return prefix


def _start_over(session):
    """--resume=False: delete the run folder's checkpoints (nothing else) so that none can be resumed.

    The state file is not read first, so a folder with a damaged one starts over too.
    """
    model_dir = session.args.model_dir
    doomed = glob.glob(os.path.join(glob.escape(model_dir), "ckpt-*.index"))
    doomed += glob.glob(os.path.join(glob.escape(model_dir), "ckpt-*.data-*-of-*"))
    doomed += glob.glob(os.path.join(glob.escape(model_dir), "ckpt-*.weights.npz"))  # npu_utils.save_checkpoint's
    doomed += [p for p in [os.path.join(model_dir, "checkpoint")] if os.path.isfile(p)]
    for path in doomed:
        os.remove(path)
    session.manager = tf.train.CheckpointManager(session.checkpoint, model_dir,
                                                 max_to_keep=session.args.keep_checkpoints)
    if doomed:
        print(f"[run] --resume=False: deleted the checkpoints in {model_dir}; starting over", flush=True)


def _restore(session, prefix):
    """Restore ``prefix``: all of it to resume a training; evaluate and predict need only the weights,
    which also come from a checkpoint written on the other stack (its portable weights file)."""
    check_readable(prefix)
    weights_only = None if flags.trains(session.args) else session.model
    error = npu_utils.restore_checkpoint(session.checkpoint, prefix, model=weights_only)
    if error:
        # With the run's config.json the network's flags came from there; without it they may be wrong.
        hint = ("" if npu_utils.read_run_config(session.args.model_dir) is not None else
                f" (no {npu_utils.RUN_CONFIG} there: give the --base_filters and --n_classes of its training run)")
        raise UserError(f"{prefix} cannot be restored here: {error}{hint}")
    if weights_only is not None:  # the other stack's portable weights leave the step at 0: read it directly
        session.checkpoint.step.assign(tf.train.load_checkpoint(prefix).get_tensor(STEP_KEY))
    print(f"[run] restored {prefix} (step {session.step})", flush=True)


def restore_or_start(session):
    """Restore the latest checkpoint, start over, or start fresh, as the mode and ``--resume`` ask.

    Training without ``--resume`` refuses a folder that holds a checkpoint;
    ``--resume=False`` deletes its checkpoints; evaluate and predict always
    restore. Then every rank takes rank 0's variables, and a training chief
    writes config.json (THE RULE: after all checks and the restore).

    Raises:
      UserError: a checkpoint in the way, none to evaluate with, or one that
        is unreadable or does not fit.
    """
    args, ctx = session.args, session.ctx
    trains = flags.trains(args)
    if trains and args.resume_training is False and not args.benchmark and ctx.is_chief:
        _start_over(session)
    latest = latest_checkpoint(args.model_dir) if ctx.is_chief else None
    if trains and latest and args.resume_training is None and not args.benchmark and ctx.is_chief:
        raise UserError(f"--model_dir={args.model_dir} already holds {latest}; pass --resume (or "
                        "--resume_training) to continue it, --resume=False to start over, or choose "
                        "another --model_dir")
    if latest and (args.resume_training or not trains):
        _restore(session, latest)
    elif not trains and not args.benchmark and ctx.is_chief:
        raise UserError(f"--model_dir={args.model_dir}: no checkpoint to {args.exec_mode} with")
    elif trains and args.pretrained_checkpoint:
        load_pretrained(session.model, args.pretrained_checkpoint)
    # Only rank 0 has checkpoints: every rank continues from its weights and step.
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
    latest = latest_checkpoint(source_dir) if config is not None else None
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
