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
"""Building the network of a run, loading earlier weights, freezing the backbone."""

import json
import os

import keras
import tensorflow as tf

from common.npu_utils import UserError
from model.lraspp import SEGMENTATION_HEAD_PREFIX, build_lraspp
from model.mobilenet_v3 import CLASSIFIER_LAYERS, build_classifier

MODEL_FILE = "model.keras"
CLASS_NAMES_FILE = "class_names.json"


def build_network(args, num_classes):
    """The run's network from its flags: classifier, or LR-ASPP for segmentation."""
    if args.task == "segmentation":
        return build_lraspp(args.model, args.alpha, num_classes, input_shape=(None, None, 3),
                            bn_momentum=args.bn_momentum)
    return build_classifier(args.model, args.alpha, num_classes, input_shape=(args.height, args.width, 3),
                            dropout=args.dropout, bn_momentum=args.bn_momentum)


def is_head_layer(layer):
    """True for the layers after the backbone (classifier or LR-ASPP head)."""
    return layer.name in CLASSIFIER_LAYERS or layer.name.startswith(SEGMENTATION_HEAD_PREFIX)


def set_backbone_trainable(model, trainable):
    """Freeze or unfreeze every backbone layer (frozen BN runs in inference mode)."""
    for layer in model.layers:
        if not is_head_layer(layer) and layer.weights:
            layer.trainable = trainable


def save_model(model, class_names, folder):
    """Write ``model.keras`` and ``class_names.json`` (index -> name) into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, MODEL_FILE))
    with open(os.path.join(folder, CLASS_NAMES_FILE), "w", encoding="utf-8") as handle:
        json.dump(list(class_names), handle, indent=1)


def _model_file(path):
    """The .keras file meant by ``path``: itself, or a run folder's best or final model."""
    if os.path.isfile(path) and path.endswith(".keras"):
        return path
    for candidate in (os.path.join(path, "best", MODEL_FILE), os.path.join(path, MODEL_FILE)):
        if os.path.isfile(candidate):
            return candidate
    return None


def load_saved(path):
    """Load a saved model and its class names for evaluate, predict and export.

    Args:
      path: a ``.keras`` file or a run folder (its ``best/`` model, else its final model).
    Returns:
      ``(model, class_names)``.
    Raises:
      UserError: nothing loadable at ``path``.
    """
    model_file = _model_file(path)
    if model_file is None:
        raise UserError(f"no saved model at {path}: expected a .keras file or a run folder holding "
                        f"best/{MODEL_FILE} or {MODEL_FILE} (train first, or pass --weights)")
    model = keras.models.load_model(model_file, compile=False)
    names_file = os.path.join(os.path.dirname(model_file), CLASS_NAMES_FILE)
    if not os.path.isfile(names_file):
        raise UserError(f"{names_file} is missing: it maps the outputs of {model_file} to class names")
    with open(names_file, encoding="utf-8") as handle:
        return model, json.load(handle)


def _checkpoint_prefix(path):
    if os.path.isdir(path):
        return tf.train.latest_checkpoint(path) or tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
    return path if os.path.isfile(path + ".index") else None


def load_initial_weights(model, path):
    """Initialise ``model`` from an earlier run (transfer learning).

    A ``.keras`` model (or a run folder's) gives every layer whose name and
    weight shapes match, so the backbone always loads and a classifier of a
    different class count stays newly initialised. A checkpoint (prefix or
    folder) must come from the same network and class count.

    Returns:
      A one-line description of what was loaded.
    Raises:
      UserError: nothing usable at ``path``, or nothing matched.
    """
    model_file = _model_file(path)
    if model_file is not None:
        source = keras.models.load_model(model_file, compile=False)
        source_layers = {layer.name: layer for layer in source.layers}
        loaded, skipped = 0, []
        for layer in model.layers:
            match = source_layers.get(layer.name)
            if match is None or not layer.weights:
                continue
            shapes = [tuple(w.shape) for w in layer.weights]
            if shapes == [tuple(w.shape) for w in match.weights]:
                layer.set_weights(match.get_weights())
                loaded += 1
            else:
                skipped.append(layer.name)
        if not loaded:
            raise UserError(f"--weights={path}: no layer of {model_file} matches this network")
        new = f"; new (shape differs): {', '.join(skipped)}" if skipped else ""
        return f"loaded {loaded} layers from {model_file}{new}"
    prefix = _checkpoint_prefix(path)
    if prefix is None:
        raise UserError(f"--weights={path} is neither a .keras model, a run folder nor a checkpoint")
    try:
        tf.train.Checkpoint(model=model).read(prefix).expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as error:
        raise UserError(f"--weights={prefix}: the checkpoint does not fit this network ({str(error)[:200]}); "
                        f"to change the class count pass the run's {MODEL_FILE} instead") from None
    return f"loaded checkpoint {prefix}"
