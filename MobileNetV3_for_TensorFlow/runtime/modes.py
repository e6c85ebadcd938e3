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
"""The steps main.py runs: the data of a run, a finished run's model, evaluate and predict."""

import os

from common import npu_utils
from common.npu_utils import UserError
from data_loading import folders, pipeline
from runtime import flags, inference, network


def load_data(args, need_train):
    """The checked file lists of the run (see data_loading.folders).

    Training checks --class_number against the class folders (0 takes it from
    them, and ``args.class_number`` is set to the folder count); evaluation
    compares the folders with the saved model's class names instead.

    Returns:
      :class:`folders.Dataset` (the training split is empty when not ``need_train``).
    """
    if not args.eval_dir or (need_train and not args.train_dir):
        raise UserError("no data: pass --data_path (holding train/ and validation/) "
                        "or set train_dir and eval_dir")
    train_dir = args.train_dir if need_train else None
    if args.task == "segmentation":
        dataset = folders.load_segmentation(train_dir, args.eval_dir, args.class_number)
    elif need_train:
        dataset = folders.load_classification(train_dir, args.eval_dir)
    else:
        split, names = folders.load_class_split(args.eval_dir)
        dataset = folders.Dataset(folders.Split([], []), split, names)
    if need_train and args.task == "classification":
        if args.class_number not in (0, len(dataset.class_names)):
            raise UserError(
                f"class_number={args.class_number} but {args.eval_dir} has {len(dataset.class_names)} class "
                f"folders; pass --class_number={len(dataset.class_names)} (or 0 to take it from the folders)")
        args.class_number = len(dataset.class_names)
    return dataset


def load_run(args, given):
    """The model of the finished run ``--model_dir`` for evaluate, predict and export.

    The network settings (:data:`flags.RUN_KEYS`) come from the run's
    config.json, and a flag that contradicts them is refused; the task,
    input size and class count are then checked against the saved model.
    --weights is only where training starts and is not used here.

    Returns:
      ``(model, class_names)``.
    """
    if args.weights:
        print(f"[model] weights={args.weights} is only where training starts; --mode={args.mode} uses "
              f"the model of --model_dir={args.save_dir}", flush=True)
    npu_utils.take_from_run_config(args, given, flags.RUN_KEYS, args.save_dir,
                                   why="its model was trained so")
    model, names = network.load_saved(args.save_dir)
    _fit_args_to_model(args, model, names)
    return model, names


def _fit_args_to_model(args, model, names):
    """Take the task, the input size and the class count from a saved model rather than from the flags.

    A run folder without config.json (an older run, or a copied .keras model)
    still evaluates right. A classifier is saved with a fixed (height, width);
    an LR-ASPP model takes any size and outputs a map (N, H, W, classes).
    ``names`` are the model's class names (its class_names.json).
    """
    task = "segmentation" if len(model.output_shape) == 4 else "classification"
    if task != args.task:
        print(f"[model] the saved model does {task}: using --task={task}", flush=True)
        args.task = task
    height, width = model.input_shape[1:3]
    if height and (height, width) != (args.height, args.width):
        print(f"[model] the saved model takes {height}x{width} images: using --height={height} "
              f"--width={width}", flush=True)
        args.height, args.width = height, width
    if args.class_number != len(names):
        print(f"[model] the saved model has {len(names)} classes: using --class_number={len(names)}", flush=True)
        args.class_number = len(names)


def evaluate(args, model, names, dataset):
    """Evaluate on the validation split and write the report into ``<model_dir>/eval``.

    Raises:
      UserError: the validation folders hold other classes than the model's.
    """
    if names != dataset.class_names:
        raise UserError(f"the model in {args.save_dir} was trained on the classes {names}, but "
                        f"{args.eval_dir} holds {dataset.class_names}")
    checker = pipeline.DecodeChecker(args.skip_bad_images)
    data = pipeline.eval_dataset(dataset.validation.paths, dataset.validation.labels, args.task,
                                 args.height, args.width, args.batch, flags.cache_bytes(args), checker,
                                 len(names))
    result = inference.evaluate(model, data, args.task, len(names), args.batch)
    checker.end_pass("evaluation")
    inference.report(result, names, args.task, os.path.join(args.save_dir, "eval"))


def predict(args, model, names):
    """Predict every image of --input into --output (CSV, or a folder of PNG masks)."""
    checker = pipeline.DecodeChecker(args.skip_bad_images)
    default = "predictions" if args.task == "segmentation" else "predictions.csv"
    inference.predict(model, names, folders.list_images(args.input), args.task, args.height, args.width,
                      args.batch, args.output or os.path.join(args.save_dir, default), checker)
    checker.end_pass("prediction")

