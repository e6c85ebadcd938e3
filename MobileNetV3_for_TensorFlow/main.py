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
"""MobileNetV3 / LR-ASPP: train, evaluate, predict or export.

    python3 main.py --data_path=DIR [--mode=train_and_evaluate] [--model=small] ...

Run ``python3 main.py --help`` for every flag; config/config.json holds the defaults.
"""

import os
import sys

# The repository root holds the shared common/ package; the model directory
# holds this model's packages. Both must import however main.py is started.
MODEL_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [p for p in (MODEL_DIR, os.path.dirname(MODEL_DIR)) if p not in sys.path]

from common import npu_utils  # noqa: E402
from runtime import config  # noqa: E402


def load_data(args, need_train):
    """The checked dataset of the run and its class count (see data_loading.folders).

    Training checks --class_number against the class folders; evaluation
    compares the folders with the saved model's class names instead.
    """
    from data_loading import folders
    if not args.eval_dir or (need_train and not args.train_dir):
        raise npu_utils.UserError("no data: pass --data_path (holding train/ and validation/) "
                                  "or set train_dir and eval_dir")
    train_dir = args.train_dir if need_train else None
    if args.task == "segmentation":
        dataset = folders.load_segmentation(train_dir, args.eval_dir, args.class_number, args.skip_bad_images)
    elif need_train:
        dataset = folders.load_classification(train_dir, args.eval_dir, args.skip_bad_images)
    else:
        split, names, skipped = folders.load_class_split(args.eval_dir, args.skip_bad_images)
        dataset = folders.Dataset(folders.Split([], []), split, names, skipped)
    for path, reason in dataset.skipped:
        print(f"[data] skipped {path}: {reason}", flush=True)
    if need_train and args.task == "classification" and args.class_number not in (0, len(dataset.class_names)):
        raise npu_utils.UserError(
            f"class_number={args.class_number} but {args.eval_dir} has {len(dataset.class_names)} class "
            f"folders; pass --class_number={len(dataset.class_names)} (or 0 to take it from the folders)")
    return dataset, len(dataset.class_names)


@npu_utils.exit_on_user_error
def main(argv=None):
    args = config.parse_args(argv)
    ctx = npu_utils.setup_device(args)
    if args.mode in ("train", "train_and_evaluate"):
        run_training(args, ctx)
    else:
        run_inference(args, ctx)
    return 0


def run_training(args, ctx):
    """train / train_and_evaluate: train into --modeldir, then evaluate its best model."""
    from runtime import inference, network, training
    os.makedirs(args.save_dir, exist_ok=True)
    _write_run_config(args, ctx)
    dataset, num_classes = load_data(args, need_train=True)
    training.train(args, ctx, dataset, num_classes)
    # The final report is the chief's: only it saves the best model.
    if args.mode == "train_and_evaluate" and ctx.is_chief:
        model, names = network.load_saved(args.save_dir)
        result = inference.evaluate(model, _eval_batches(args, dataset), args.task, len(names))
        inference.report(result, names, args.task, os.path.join(args.save_dir, "eval"))


def run_inference(args, ctx):
    """evaluate / predict / export the model of the run folder --modeldir.

    The task, input size, class count and class names come from the saved
    model; --weights is only where training starts and is not used here.
    """
    from runtime import inference, network
    if args.weights:
        print(f"[model] weights={args.weights} is only where training starts; --mode={args.mode} uses "
              f"the model of --modeldir={args.save_dir}", flush=True)
    model, names = network.load_saved(args.save_dir)
    _fit_args_to_model(args, model, names)
    _write_run_config(args, ctx)
    if args.mode == "evaluate":
        dataset, _ = load_data(args, need_train=False)
        if names != dataset.class_names:
            raise npu_utils.UserError(f"the model in {args.save_dir} was trained on the classes {names}, but "
                                      f"{args.eval_dir} holds {dataset.class_names}")
        result = inference.evaluate(model, _eval_batches(args, dataset), args.task, len(names))
        inference.report(result, names, args.task, os.path.join(args.save_dir, "eval"))
    elif args.mode == "predict":
        from data_loading.folders import list_images
        paths, skipped = list_images(args.input, args.skip_bad_images)
        for path, reason in skipped:
            print(f"[data] skipped {path}: {reason}", flush=True)
        default = "predictions" if args.task == "segmentation" else "predictions.csv"
        inference.predict(model, names, paths, args.task, args.height, args.width,
                          args.batch, args.output or os.path.join(args.save_dir, default))
    else:
        inference.export(model, names, os.path.join(args.save_dir, "export"))


def _write_run_config(args, ctx):
    if ctx.is_chief:
        config.write_run_config(args, os.path.join(args.save_dir, f"run_config_{args.mode}.json"))


def _fit_args_to_model(args, model, names):
    """Take the task, the input size and the class count from a saved model rather than from the flags.

    A classifier is saved with a fixed (height, width); an LR-ASPP model takes
    any size and outputs a map (N, H, W, classes). ``names`` are the model's
    class names (its class_names.json).
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


def _eval_batches(args, dataset):
    from data_loading import pipeline
    return pipeline.eval_dataset(dataset.validation.paths, dataset.validation.labels, args.task,
                                 args.height, args.width, args.batch)


if __name__ == "__main__":
    sys.exit(main())
