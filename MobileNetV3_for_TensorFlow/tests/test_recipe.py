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
"""The paper recipe's optimizer: the first steps equal a hand-computed TF1 RMSProp + L2 + moving average."""

import numpy as np
import pytest
import tensorflow as tf

from common import cluster, npu_utils, stack
from common.stack import keras
from runtime import flags
from model.lraspp import build_lraspp
from model.mobilenet_v3 import build_classifier
from model.network import set_backbone_trainable
from model.recipe import MovingAverage, WarmupDecay, averaged_variables, decayed_kernels, l2_loss, make_optimizer
from runtime.metrics import chance_hint, classification_metrics, make_loss

BN_EPSILON = 1e-3  # Keras' BatchNormalization default on both stacks


def _tiny_model():
    """BN without scale and offset (its batch statistics, nothing to train) -> Dense -> softmax "predictions"
    (the networks' last layer, whose input the loss takes as logits): (N, 4) -> (N, 3)."""
    inputs = keras.Input((4,))
    x = keras.layers.BatchNormalization(center=False, scale=False, momentum=0.5, name="bn")(inputs)
    x = keras.layers.Dense(3, name="dense")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="predictions")(x))


def test_first_steps_equal_tf1_rmsprop_with_l2_and_moving_average_with_warmup():
    lr, l2, decay = 0.1, 0.01, 0.2  # decay 0.2 so that the warm-up (2/11, then 3/12 > 0.2) and the cap both act
    args = flags.parse_args(["--optimizer=rmsprop", f"--weight_decay={l2}", f"--ema_momentum={decay}",
                                f"--learning_rate={lr}"])
    ctx = npu_utils.setup_device(args)
    stack.set_random_seed(0)
    model = _tiny_model()
    optimizer = make_optimizer(ctx, args, WarmupDecay(lr, 3, kind="constant"))
    stack.build_optimizer(optimizer, model.trainable_variables)
    step = npu_utils.make_train_step(ctx, model, optimizer, make_loss(model, "classification", 3, 0.0, l2))
    average = MovingAverage(averaged_variables(model), args.ema_momentum)
    average.reset()

    rng = np.random.default_rng(0)
    kernel, bias = (v.numpy().astype(np.float64) for v in model.get_layer("dense").weights)
    ms = [np.ones_like(kernel), np.ones_like(bias)]  # TF1: the squared-gradient average starts at 1
    mom = [np.zeros_like(kernel), np.zeros_like(bias)]
    averages = [kernel, bias, np.zeros(4), np.ones(4)]  # the weights and BN's initial moving mean and variance
    for n in (1, 2, 3):
        x = rng.normal(2.0, 3.0, (8, 4)).astype(np.float32)
        labels = rng.integers(0, 3, 8)
        loss = float(step(tf.constant(x), tf.constant(labels)))
        average.update(tf.constant(n, tf.int64))
        # The forward pass in NumPy: batch normalisation with the batch statistics, softmax, cross-entropy.
        normalised = (x - x.mean(0)) / np.sqrt(x.var(0) + BN_EPSILON)
        logits = normalised @ kernel + bias
        probabilities = np.exp(logits - logits.max(1, keepdims=True))
        probabilities /= probabilities.sum(1, keepdims=True)
        onehot = np.eye(3)[labels]
        expected_loss = -np.mean(np.sum(onehot * np.log(probabilities), 1)) + l2 * np.sum(kernel ** 2) / 2
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        # The gradients: cross-entropy, plus l2 * w for the kernel only (no decay of biases).
        error = (probabilities - onehot) / len(x)
        grads = [normalised.T @ error + l2 * kernel, error.sum(0)]
        # TF1's ApplyRMSProp: ms = rho ms + (1 - rho) g^2; mom = momentum mom + lr g / sqrt(ms + eps); w -= mom.
        weights = [kernel, bias]
        for i, grad in enumerate(grads):
            ms[i] = 0.9 * ms[i] + 0.1 * grad ** 2
            mom[i] = 0.9 * mom[i] + lr * grad / np.sqrt(ms[i] + 1e-3)
            weights[i] = weights[i] - mom[i]
        kernel, bias = weights
        np.testing.assert_allclose(model.get_layer("dense").kernel.numpy(), kernel, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(model.get_layer("dense").bias.numpy(), bias, rtol=1e-5, atol=1e-7)
        # TF's ExponentialMovingAverage(decay, num_updates=n) over the weights and BN's moving statistics.
        d = min(decay, (1 + n) / (10 + n))
        statistics = [v.numpy() for v in model.get_layer("bn").weights]  # moving mean, moving variance
        averages = [a - (1 - d) * (a - w) for a, w in zip(averages, [kernel, bias, *statistics])]
        for kept, expected in zip(average.averages, averages):
            np.testing.assert_allclose(kept.numpy(), expected, rtol=1e-5, atol=1e-7)
    # Inside swapped() the model holds the averages (the saved models' weights), then its own again.
    with average.swapped():
        np.testing.assert_allclose(model.get_layer("dense").kernel.numpy(), averages[0], rtol=1e-5)
        np.testing.assert_allclose(model.get_layer("bn").weights[0].numpy(), averages[2], rtol=1e-5)
    np.testing.assert_allclose(model.get_layer("dense").kernel.numpy(), kernel, rtol=1e-5, atol=1e-7)


def test_decoupled_mode_decays_the_kernel_outside_the_loss():
    # Adam on loss = 0 (zero gradients): only the decoupled decay moves the kernel, w <- w (1 - lr decay).
    args = flags.parse_args(["--weight_decay=0.5", "--weight_decay_mode=decoupled", "--learning_rate=0.1"])
    layer = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="ones", name="dense")
    layer.build((None, 3))
    optimizer = make_optimizer(npu_utils.setup_device(args), args, WarmupDecay(0.1, 2, kind="constant"))
    stack.build_optimizer(optimizer, [layer.kernel, layer.bias])
    for _ in range(2):
        optimizer.apply_gradients([(tf.zeros_like(v), v) for v in (layer.kernel, layer.bias)])
    np.testing.assert_allclose(layer.kernel.numpy(), 0.95 ** 2, rtol=1e-6)
    np.testing.assert_allclose(layer.bias.numpy(), 1.0)


def test_slow_cpu_requests_say_what_they_cost(capsys):
    ranks = cluster.read_ranks({})
    flags.note_cpu_costs(npu_utils.RunContext("cpu", npu_utils.Precision("mixed_bfloat16"), True, ranks, None))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" trains ")[0] for line in lines] == ["[device] note: mixed_bfloat16",
                                                             "[device] note: --use_xla"]
    assert all("measured figures: README, 性能" in line for line in lines)
    flags.note_cpu_costs(npu_utils.RunContext("cpu", npu_utils.Precision("float32"), False, ranks, None))
    flags.note_cpu_costs(npu_utils.RunContext("gpu", npu_utils.Precision("mixed_float16"), True, ranks, None))
    assert capsys.readouterr().out == ""


def _conv_layers(model):
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _decayed_layers(model):
    """The names of the layers whose kernel :func:`decayed_kernels` returns."""
    kernels = decayed_kernels(model)
    return [layer.name for layer in model.layers if any(getattr(layer, "kernel", None) is k for k in kernels)]


def test_l2_decays_the_conv_and_dense_kernels_and_not_the_depthwise_ones():
    # TF-slim's MobileNet training_scope: l2_regularizer on conv2d, none on separable_conv2d (depthwise).
    model = build_classifier("small", 0.5, 3, input_shape=(32, 32, 3), dropout=0.0)
    decayed = _decayed_layers(model)
    # Keras 2.6's DepthwiseConv2D is a Conv2D: the depthwise layers are among _conv_layers there.
    depthwise = [layer.name for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert len(depthwise) == 11 and all(name.endswith("_depthwise") for name in depthwise)
    assert decayed == [name for name in _conv_layers(model) if name not in depthwise]
    assert decayed[0] == "stem_conv" and decayed[-2:] == ["head_conv", "logits"]
    assert {"block0_se_reduce", "block0_se_expand", "block0_project", "block1_expand"} <= set(decayed)
    expected = 1e-5 * sum(np.sum(k.numpy().astype(np.float64) ** 2) / 2 for k in decayed_kernels(model))
    assert float(l2_loss(model, 1e-5)) == pytest.approx(expected, rel=1e-5)
    assert l2_loss(model, 0.0) == 0.0
    # While the backbone is frozen only the classifier's kernels decay (the others do not train).
    set_backbone_trainable(model, False)
    assert _decayed_layers(model) == ["head_conv", "logits"]


def _probability_loss(model, images, labels, task, num_classes, smoothing):
    """The cross-entropy of the model's softmax outputs (the loss before it was computed from logits)."""
    probabilities = model(images, training=True)
    if task == "classification":
        return tf.reduce_mean(keras.losses.categorical_crossentropy(tf.one_hot(labels, num_classes), probabilities,
                                                                    label_smoothing=smoothing))
    valid = tf.not_equal(labels, 255)
    pixel = keras.losses.sparse_categorical_crossentropy(tf.where(valid, labels, 0), probabilities)
    return tf.reduce_sum(tf.where(valid, pixel, 0.0)) / tf.reduce_sum(tf.cast(valid, tf.float32))


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_the_loss_from_logits_equals_the_cross_entropy_of_the_probabilities(task):
    stack.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (2, 64, 64, 3)), tf.float32)
    if task == "classification":
        model, smoothing = build_classifier("small", 0.5, 3, input_shape=(64, 64, 3), dropout=0.0), 0.1
        labels = tf.constant([0, 2])
    else:
        model, smoothing = build_lraspp("small", 0.5, 3, input_shape=(64, 64, 3)), 0.0
        labels = tf.constant(rng.choice([0, 1, 2, 255], (2, 64, 64)), tf.int32)
    loss = make_loss(model, task, 3, smoothing, l2=1e-3)(images, labels)
    expected = _probability_loss(model, images, labels, task, 3, smoothing) + l2_loss(model, 1e-3)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_hint_when_validation_sits_at_chance_while_training_has_learnt():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 3)  # the largest class is half of the split: chance 0.5
    always_zero = classification_metrics(np.tile([0.8, 0.1, 0.1], (12, 1)), labels)
    hint = chance_hint(always_zero, train_loss=0.2)
    assert hint.startswith("[train] hint: validation top1 0.500 is at chance (0.500) while the training loss 0.200 "
                           "is far below a uniform guess's 1.099:") and "--bn_momentum=0.9" in hint
    assert chance_hint(always_zero, train_loss=0.6) is None  # not learnt: above half of ln 3
    right = classification_metrics(np.eye(3)[labels], labels)
    assert chance_hint(right, train_loss=0.2) is None
