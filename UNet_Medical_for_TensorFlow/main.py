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
"""UNet_Medical_for_TensorFlow: train, evaluate, predict or benchmark UNet on the ISBI 2012 stack.

    python3 main.py --data_path=DATA --mode=train_and_evaluate --crossvalidation_idx=0
"""

import os
import sys

# This directory and the repository root (common/, shared by the models), from anywhere main.py starts.
MODEL_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [MODEL_DIR, os.path.dirname(MODEL_DIR)]
try:
    from common import errors, npu_utils
except ModuleNotFoundError as missing:  # the model directory copied without the repository around it
    if missing.name != "common":
        raise
    print(f"error: {MODEL_DIR} needs the repository's common/ folder beside it ({os.path.dirname(MODEL_DIR)}/"
          "common); copy the model directory with it", file=sys.stderr)
    sys.exit(2)
from runtime import flags  # noqa: E402  (no TensorFlow: --help and flag errors answer at once)


@errors.exit_on_user_error
def main(argv=None):
    args = flags.parse_args(argv)  # every flag; evaluate/predict/resume read the run's config.json
    ctx = npu_utils.setup_device(args, seed=args.seed)  # device, precision, ranks, strategy, seed (loads TensorFlow)
    from data_loading import readers  # deferred, like everything below: TensorFlow loads once the flags are good
    from runtime import evaluation, inference, training

    data = readers.read_dataset(args.data_path, args.n_classes, need_test=args.mode.endswith("predict"),
                                need_train=args.mode != "predict")  # only what the mode uses
    state = training.build(args, ctx, data)  # folds, network, optimizer, checkpoints
    step = training.restore_or_start(state)  # then writes config.json when training
    if flags.trains(args):
        step = training.train(state)  # also evaluates every --evaluate_every steps; exports at its end
    if ctx.is_chief and args.benchmark and not flags.trains(args):
        inference.benchmark_inference(state, state.probability_fn)
    elif ctx.is_chief and args.mode.endswith("evaluate"):
        evaluation.evaluate(state, state.probability_fn, step)
    elif ctx.is_chief and args.mode.endswith("predict"):
        inference.predict(state, state.probability_fn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
