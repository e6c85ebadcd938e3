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
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import trackable_object_graph_pb2

from common.npu_utils import UserError
from model.lraspp import SEGMENTATION_HEAD_PREFIX, build_lraspp
from model.mobilenet_v3 import CLASSIFIER_LAYERS, build_classifier

MODEL_FILE = "model.keras"
CLASS_NAMES_FILE = "class_names.json"
# Where tf.train.Checkpoint stores its object graph (a TrackableObjectGraph proto).
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


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
                        f"best/{MODEL_FILE} or {MODEL_FILE} (train first, or pass the --modeldir of a "
                        "finished run)")
    print(f"[model] using {model_file}", flush=True)
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


def _keras_layers(model_file):
    """The weights of a saved model by layer: ``{layer name: {weight name: array}}``."""
    source = keras.models.load_model(model_file, compile=False)
    return {layer.name: {weight.name: weight.numpy() for weight in layer.weights} for layer in source.layers}


def _checkpoint_layers(prefix):
    """The model weights in a training checkpoint by layer: ``{layer name: {weight name: array}}``.

    runtime/training.py saves ``tf.train.Checkpoint(model=..., optimizer=...,
    step=...)``. A trainable variable is stored under the optimizer's key
    (``optimizer/_trainable_variables/N/...``), so the keys do not say which
    layer a value belongs to; the checkpoint's object graph does: the model's
    variables are those reachable from its ``model`` object, each with its
    full name, the Keras path ``layer/weight``. The optimizer's slots
    (moments, iterations) are not reachable from the model and are left out.
    """
    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY))
    pending = [child.node_id for child in graph.nodes[0].children if child.local_name == "model"]
    seen, layers = set(pending), {}
    while pending:
        node = graph.nodes[pending.pop()]
        for attribute in node.attributes:
            if attribute.name == "VARIABLE_VALUE" and "/" in attribute.full_name:
                layer, weight = attribute.full_name.rsplit("/", 1)
                layers.setdefault(layer, {})[weight] = reader.get_tensor(attribute.checkpoint_key)
        for child in node.children:
            if child.node_id not in seen:
                seen.add(child.node_id)
                pending.append(child.node_id)
    return layers


def _copy_matching_layers(model, source_layers, source):
    """Set every layer of ``model`` whose name, weight names and weight shapes match.

    Head layers (classifier, LR-ASPP head) that differ in shape or are
    missing from the source stay as built; every backbone layer must match.

    Args:
      model: the network to initialise.
      source_layers: ``{layer name: {weight name: array}}`` of the earlier run.
      source: the file or checkpoint prefix they come from, for the messages.
    Returns:
      A one-line description: the number of layers loaded and the new ones.
    Raises:
      UserError: no layer matches, or a backbone layer differs or is missing
        (the source is another --model, --alpha or a foreign network);
        ``model`` is then unchanged.
    """
    matched, differ, missing = [], [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        weights = source_layers.get(layer.name)
        if weights is None:
            missing.append(layer)
        elif {w.name: tuple(w.shape) for w in layer.weights} == {n: tuple(v.shape) for n, v in weights.items()}:
            matched.append(layer)
        else:
            differ.append(layer)
    if not matched:
        raise UserError(f"--weights={source}: no layer of it matches this network")
    backbone = [layer.name for layer in differ + missing if not is_head_layer(layer)]
    if backbone:
        raise UserError(f"--weights={source}: {len(backbone)} backbone layers of this network differ in shape "
                        f"or are missing there ({', '.join(backbone[:3])}, ...): it comes from another --model "
                        "or --alpha")
    for layer in matched:
        weights = source_layers[layer.name]
        layer.set_weights([weights[w.name] for w in layer.weights])
    message = f"loaded {len(matched)} layers from {source}"
    if differ:
        message += f"; new (shape differs): {', '.join(layer.name for layer in differ)}"
    if missing:
        message += f"; new (not in the source): {', '.join(layer.name for layer in missing)}"
    return message


def load_initial_weights(model, path):
    """Initialise ``model`` from an earlier run (transfer learning).

    ``path`` is a ``.keras`` model, a run folder (its best or final model,
    else its latest checkpoint) or a training checkpoint (prefix, or a folder
    holding one). Either way every layer whose name and weight shapes match
    loads, and optimizer state is not used: the backbone loads whole (it must
    come from the same --model and --alpha), while a classifier of another
    class count, or the head of the other task, stays newly initialised.

    Returns:
      A one-line description: what was loaded and which layers are new.
    Raises:
      UserError: nothing loadable at ``path``, or its backbone does not fit.
    """
    model_file = _model_file(path)
    if model_file is not None:
        return _copy_matching_layers(model, _keras_layers(model_file), model_file)
    prefix = _checkpoint_prefix(path)
    if prefix is None:
        raise UserError(f"--weights={path} is neither a .keras model, a run folder nor a checkpoint")
    try:
        source_layers = _checkpoint_layers(prefix)
    except (tf.errors.OpError, DecodeError) as error:
        raise UserError(f"--weights={prefix}: not a readable TF2 checkpoint ({str(error)[:200]})") from None
    return _copy_matching_layers(model, source_layers, prefix)
