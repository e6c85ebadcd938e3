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
"""Hierarchical densely connected 3D CNN for BraTS: train, test or predict.

    python3 main.py -r DATA --mode train_test -mn dense24 -nc True -e 5

Every flag is defined in config.py (``python3 main.py --help``). A user's
mistake ends with one ``error:`` line and exit status 2, a diverged training
with exit status 3 (common/npu_utils.exit_on_user_error).
"""

import os
import sys

# main.py runs from the model directory and from test/*.sh: put the repository
# root on sys.path so `common` imports either way.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import npu_utils  # noqa: E402

import config  # noqa: E402
import runner  # noqa: E402


@npu_utils.exit_on_user_error
def main(argv=None):
    args = config.parse_args(argv)                       # flags: config.py
    ctx = runner.setup(args)                             # device, precision, ranks, seed
    data = runner.prepare_data(args, ctx)                # cases, split, checks, N4
    model, optimizer = runner.build_network(args, ctx)   # tf_models + Adam

    if args.mode in ("train", "train_test"):
        model = runner.train(args, ctx, model, optimizer, data)  # writes config.json after its checks
    if args.mode in ("test", "train_test") and ctx.is_chief and not args.benchmark:
        runner.test(args, model, data, trained_here=args.mode == "train_test")
    if args.mode == "predict" and ctx.is_chief:
        runner.predict(args, model, data)
    if data.skipped_case_ids:
        print(f"[data] bad cases left out of this run (--skip_bad_cases): {', '.join(data.skipped_case_ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
