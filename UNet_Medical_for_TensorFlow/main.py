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

    python3 main.py --data_dir=DATA --exec_mode=train_and_evaluate --crossvalidation_idx=0
"""

import os
import sys

# The repository root holds common/, shared by the three models; this makes
# `python3 main.py` work from the model directory and from test/*.sh alike.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import npu_utils  # noqa: E402
from runtime import flags  # noqa: E402


@npu_utils.exit_on_user_error
def main(argv=None):
    args = flags.parse_args(argv)
    ctx = npu_utils.setup_device(args)

    import keras
    from data_loading import readers
    from model import unet
    from runtime import run

    keras.utils.set_random_seed(args.seed)
    data = readers.read_dataset(args.data_dir, args.n_classes,
                                need_test=args.exec_mode in ("predict", "train_and_predict"))
    readers.check_min_size(data, unet.output_size(args.tile_size))
    try:
        run.run(args, ctx, data)
    except run.TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
