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
"""One worker of the two-process test: trains a tiny model data-parallel.

Started by test_multiworker.py with RANK_SIZE, RANK_ID and WORKER_HOSTS set;
writes its final weights to the .npy file named by its first argument.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from common import npu_utils, stack  # noqa: E402
from common.errors import exit_on_user_error  # noqa: E402


# The models' own exit: a finished worker leaves without TensorFlow's collective teardown,
# which can abort (SIGABRT) on TF 2.6.5 after the work is done.
@exit_on_user_error
def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("weights_out")
    npu_utils.add_device_flags(parser)
    args = parser.parse_args()
    ctx = npu_utils.setup_device(args)

    import tensorflow as tf
    from common.stack import keras

    stack.set_random_seed(0)
    with ctx.strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
        optimizer = ctx.wrap_optimizer(keras.optimizers.SGD(0.1))
        stack.build_optimizer(optimizer, model.trainable_variables)
        step_counter = tf.Variable(0, dtype=tf.int64)
    if not ctx.is_chief:
        # As after restoring a checkpoint only rank 0 has: rank 1's values differ
        # until broadcast_variables gives it rank 0's.
        for variable in model.weights:
            variable.assign(variable + 1.0)
        step_counter.assign(7)
    ctx.broadcast_variables(model.weights + stack.optimizer_variables(optimizer) + [step_counter])
    if int(step_counter.numpy()) != 0:
        raise SystemExit(f"rank {ctx.ranks.rank_id}: step {int(step_counter.numpy())} after broadcast")

    def loss_fn(features, labels):
        return tf.reduce_mean(tf.square(model(features, training=True) - labels))

    step = npu_utils.make_train_step(ctx, model, optimizer, loss_fn)
    # The global batch is 4 rows; each rank takes its own 2.
    rng = np.random.default_rng(1)
    for i in range(5):
        features = rng.normal(size=(4, 4)).astype("float32")
        labels = features.sum(axis=1, keepdims=True)
        shard = slice(2 * ctx.ranks.rank_id, 2 * ctx.ranks.rank_id + 2) if ctx.multi_worker else slice(None)
        loss = step(tf.constant(features[shard]), tf.constant(labels[shard]))
        print(npu_utils.format_step_line(i + 1, float(loss), 4.0, 0.1), flush=True)
    np.save(args.weights_out, np.concatenate([w.numpy().ravel() for w in model.weights]))


if __name__ == "__main__":
    main()
