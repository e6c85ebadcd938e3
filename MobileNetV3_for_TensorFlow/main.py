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

    python3 main.py --data_path=DIR [--mode=train_and_evaluate] [--model=small] ...   # --help: every flag
"""

import os
import sys

# This directory and the repository root (common/, shared by the models), however main.py starts.
MODEL_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [p for p in (MODEL_DIR, os.path.dirname(MODEL_DIR)) if p not in sys.path]
try:
    from common import errors, npu_utils
except ImportError:  # the model directory was copied without the repository around it
    print(f"error: {MODEL_DIR} needs the repository's common/ folder beside it "
          f"({os.path.join(os.path.dirname(MODEL_DIR), 'common')}); copy the model directory with it", file=sys.stderr)
    sys.exit(2)
from runtime import flags  # noqa: E402  (no TensorFlow: --help and flag errors answer at once)


@errors.exit_on_user_error
def main(argv=None):
    args = flags.parse_args(argv)  # every flag; evaluate/predict/export/resume read the run's config.json
    ctx = npu_utils.setup_device(args, seed=args.seed)  # device, precision, ranks, seed (loads TensorFlow)
    from model import network  # deferred, like everything below: TensorFlow loads once the flags are good
    from runtime import evaluation, inference, training
    flags.note_cpu_costs(ctx)  # a precision or XLA request that slows this network on a CPU says so
    if flags.trains(args):  # then a train_and_evaluate's report, by the chief
        dataset = evaluation.load_data(args, need_train=True)  # checked file lists
        state = training.build(args, ctx, dataset)  # network, optimizer, checkpoints
        training.restore_or_start(state)  # resume, start over or start from --weights
        training.train(state)  # config.json, the epochs, best/ and the final model
        if args.mode == "train_and_evaluate" and ctx.is_chief and not args.benchmark:
            evaluation.evaluate_run(args, *network.load_saved(args.model_dir), dataset)
        return 0
    model, names = inference.load_run(args)  # the finished run of --model_dir
    if args.mode == "evaluate":
        evaluation.evaluate_run(args, model, names, evaluation.load_data(args, need_train=False))
    elif args.mode == "predict":
        inference.predict_run(args, model, names)
    else:
        inference.export(model, names, os.path.join(args.model_dir, "export"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
