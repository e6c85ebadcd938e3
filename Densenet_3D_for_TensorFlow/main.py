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
"""Hierarchical densely connected 3D CNN for BraTS: train, evaluate or predict.

    python3 main.py -r DATA --mode train_and_evaluate -mn dense24 -nc True -e 5

Every flag is in runtime/flags.py (``--help``); a user's mistake is one ``error:`` line and exit 2, a
diverged training exit 3 (common/errors.exit_on_user_error).
"""

import os
import sys

# The repository root (common/) and this directory (model/, data_loading/, runtime/), from anywhere.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]
try:
    from common import errors, npu_utils
except ModuleNotFoundError as missing:  # the directory copied alone, without the repository around it
    if missing.name != "common":
        raise
    print(f"error: main.py needs the repository's common/ folder ({os.path.dirname(HERE)}/common)", file=sys.stderr)
    sys.exit(2)
from runtime import flags  # noqa: E402  (no TensorFlow: --help and flag errors answer at once)


@errors.exit_on_user_error
def main(argv=None):
    args = flags.parse_args(argv)  # every flag; evaluate/predict/resume read the run's config.json
    ctx = npu_utils.setup_device(args, seed=args.seed, visible_gpus=args.gpu)  # device, precision, ranks, seed
    from data_loading import run_data  # deferred: TensorFlow loads only once the flags are good
    from runtime import evaluation, inference, training

    data = run_data.prepare_data(args, ctx)  # cases, split, checks, N4
    state = training.build(args, ctx, data)  # model/tf_models + Adam; training: its plan and checkpoints
    if flags.trains(args):
        training.restore_or_start(state)  # then writes config.json
    model = training.train(state) if flags.trains(args) else state.model
    if args.mode.endswith("evaluate") and ctx.is_chief and not args.benchmark:
        evaluation.test(args, model, data, trained_here=args.mode == "train_and_evaluate")
    if args.mode == "predict" and ctx.is_chief:
        inference.predict(args, model, data)
    if data.skipped_case_ids:
        print(f"[data] bad cases left out of this run (--skip_bad_cases): {', '.join(data.skipped_case_ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
