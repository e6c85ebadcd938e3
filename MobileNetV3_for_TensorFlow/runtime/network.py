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
"""Building the network of a run, loading earlier or ImageNet weights, freezing the backbone."""

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
# keras.applications' ImageNet weights of MobileNetV3 (the non-minimalistic ones exist at these alphas).
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
IMAGENET_ALPHAS = (0.75, 1.0)
KERAS_APPLICATIONS = {"small": keras.applications.MobileNetV3Small, "large": keras.applications.MobileNetV3Large}
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
    tensors = sum(len(layer.weights) for layer in matched)
    message = f"loaded {len(matched)} layers ({tensors} tensors) from {source}"
    if differ:
        message += f"; new (shape differs): {', '.join(layer.name for layer in differ)}"
    if missing:
        message += f"; new (not in the source): {', '.join(layer.name for layer in missing)}"
    return message


def imagenet_weights_file(network, alpha):
    """keras.applications' ImageNet weights file of MobileNetV3 ``network`` at ``alpha``.

    Downloaded once into ``~/.keras/models/`` (keras.utils.get_file), then read from there.

    Raises:
      UserError: no such weights (another alpha), or the download cannot be reached.
    """
    if float(alpha) not in IMAGENET_ALPHAS:
        raise UserError(f"--weights=imagenet: keras.applications has ImageNet weights of MobileNetV3 at "
                        f"--alpha 0.75 and 1.0 only, not {alpha:g}")
    name = f"weights_mobilenet_v3_{network}_224_{float(alpha)}_float.h5"
    url = IMAGENET_URL + name
    try:
        return keras.utils.get_file(name, url, cache_subdir="models")
    except Exception as error:  # get_file raises a bare Exception for every network failure
        reason = str(error).replace(f"URL fetch failure on {url}: ", "")[:120]
        raise UserError(f"--weights=imagenet: cannot download {url} ({reason}); without internet access, "
                        f"fetch that file elsewhere and pass --weights=PATH/{name} (or put it into "
                        "~/.keras/models/)") from None


def _keras_applications_layers(path, network, alpha):
    """The weights of a keras.applications.MobileNetV3Small/Large file under this network's layer names.

    The two networks have the same weighted layers in the same order (tests
    pin equal parameter counts), so the i-th weighted layer of one is the
    i-th of the other; every pair must have the same weight shapes. A file of
    the ImageNet classifier (1000 classes) or of the backbone alone (no top) loads.

    Returns:
      ``{layer name: {weight name: array}}`` for :func:`_copy_matching_layers`.
    Raises:
      UserError: the file does not load into that network, or a layer's shapes differ.
    """
    errors = []
    for include_top in (True, False):
        reference = KERAS_APPLICATIONS[network](input_shape=(224, 224, 3), alpha=alpha, include_top=include_top,
                                                weights=None, include_preprocessing=True)
        try:
            reference.load_weights(path)
            break
        except Exception as error:  # Keras raises ValueError, KeyError or OSError by format
            errors.append(str(error).splitlines()[0][:160])
    else:
        raise UserError(f"--weights={path}: not a weights file of keras.applications.MobileNetV3"
                        f"{network.capitalize()} at --alpha={alpha:g}, with or without top ({errors[0]})")
    ours = [layer for layer in build_classifier(network, alpha, 1000, (224, 224, 3)).layers if layer.weights]
    theirs = [layer for layer in reference.layers if layer.weights]
    layers = {}
    for mine, other in zip(ours, theirs):
        shapes = [tuple(w.shape) for w in mine.weights], [tuple(w.shape) for w in other.weights]
        if shapes[0] != shapes[1]:
            raise UserError(f"--weights={path}: its layer {other.name} has shapes {shapes[1]} where this "
                            f"network's {mine.name} has {shapes[0]} (--model={network} --alpha={alpha:g}; "
                            "keras.applications keeps a 16-channel stem below alpha 0.75)")
        layers[mine.name] = {w.name: value.numpy() for w, value in zip(mine.weights, other.weights)}
    return layers


def load_initial_weights(model, path, network=None, alpha=None):
    """Initialise ``model`` from an earlier run or from keras.applications weights (transfer learning).

    ``path`` is "imagenet" (keras.applications' ImageNet weights of the same
    ``network`` and ``alpha``), a keras.applications MobileNetV3 weights file
    (``.h5``), a ``.keras`` model, a run folder (its best or final model, else
    its latest checkpoint) or a training checkpoint (prefix, or a folder
    holding one). Every layer whose name and weight shapes match loads, and
    optimizer state is not used: the backbone loads whole (it must come from
    the same --model and --alpha), while a classifier of another class count,
    or the head of the other task, stays newly initialised.

    Args:
      model: the network to initialise (classifier or LR-ASPP).
      path: see above.
      network, alpha: the --model and --alpha of ``model`` (for keras.applications files).
    Returns:
      A one-line description: the layers and tensors loaded and which layers are new.
    Raises:
      UserError: nothing loadable at ``path``, or its backbone does not fit.
    """
    if path == "imagenet":
        path = imagenet_weights_file(network, alpha)
    if path.endswith(".h5") and os.path.isfile(path):
        return _copy_matching_layers(model, _keras_applications_layers(path, network, alpha), path)
    model_file = _model_file(path)
    if model_file is not None:
        return _copy_matching_layers(model, _keras_layers(model_file), model_file)
    prefix = _checkpoint_prefix(path)
    if prefix is None:
        raise UserError(f"--weights={path} is neither \"imagenet\", a keras.applications .h5 file, a .keras "
                        "model, a run folder nor a checkpoint")
    try:
        source_layers = _checkpoint_layers(prefix)
    except (tf.errors.OpError, DecodeError) as error:
        raise UserError(f"--weights={prefix}: not a readable TF2 checkpoint ({str(error)[:200]})") from None
    return _copy_matching_layers(model, source_layers, prefix)
