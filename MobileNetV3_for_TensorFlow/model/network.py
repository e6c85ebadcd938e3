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

from __future__ import annotations

import argparse
import json
import os
import types
import warnings
from collections.abc import Iterable

import h5py
import numpy as np
import tensorflow as tf

from common import checkpoints, cli, stack
from common.errors import UserError
from common.stack import keras
from model.lraspp import SEGMENTATION_HEAD_PREFIX, build_lraspp
from model.mobilenet_v3 import CLASSIFIER_LAYERS, build_classifier

# The stack's Keras model file (model.keras on Keras 3, model.h5 on Keras 2.6), and beside it the same
# weights by layer name, which the other stack reads (it cannot load the model file).
MODEL_FILE = "model" + stack.MODEL_FILE_SUFFIX
PORTABLE_MODEL_FILE = "model" + ".weights.npz"
# Keras model files of the two stacks.
MODEL_SUFFIXES = (".keras", ".h5")
# keras.applications' ImageNet weights of MobileNetV3 (the non-minimalistic ones exist at these alphas).
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
IMAGENET_ALPHAS = (0.75, 1.0)
# The MD5 sums keras.applications publishes for those files (with top; the same in Keras 2.6 and 3).
IMAGENET_MD5 = {("small", 0.75): "cb65d4e5be93758266aa0a7f2c6708b7",
                ("small", 1.0): "8768d4c2e7dee89b9d02b2d03d65d862",
                ("large", 0.75): "765b44a33ad4005b3ac83185abf1d0eb",
                ("large", 1.0): "59e551e166be033d707958cf9e29a6a7"}
KERAS_APPLICATIONS = {"small": keras.applications.MobileNetV3Small, "large": keras.applications.MobileNetV3Large}
# keras.applications' model names, lower-cased ("MobileNetV3Small" on Keras 3, "MobilenetV3small" on Keras 2.6).
KERAS_APPLICATIONS_NAMES = ("mobilenetv3small", "mobilenetv3large")
CLASS_NAMES_FILE = "class_names.json"


def build_network(args: argparse.Namespace | types.SimpleNamespace, num_classes: int) -> keras.Model:
    """The run's network from its flags: classifier, or LR-ASPP for segmentation."""
    if args.task == "segmentation":
        return build_lraspp(args.model, args.alpha, num_classes, input_shape=(None, None, 3),
                            bn_momentum=args.bn_momentum)
    return build_classifier(args.model, args.alpha, num_classes, input_shape=(args.height, args.width, 3),
                            dropout=args.dropout, bn_momentum=args.bn_momentum)


def is_head_layer(layer: keras.layers.Layer) -> bool:
    """True for the layers after the backbone (classifier or LR-ASPP head)."""
    return layer.name in CLASSIFIER_LAYERS or layer.name.startswith(SEGMENTATION_HEAD_PREFIX)


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze every backbone layer (frozen BN runs in inference mode)."""
    for layer in model.layers:
        if not is_head_layer(layer) and layer.weights:
            layer.trainable = trainable


def save_model(model: keras.Model, class_names: Iterable[str], folder: str) -> None:
    """Write :data:`MODEL_FILE`, its portable weights and ``class_names.json`` (index -> name) into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, MODEL_FILE))
    checkpoints.save_portable_weights(model, os.path.join(folder, PORTABLE_MODEL_FILE))
    with open(os.path.join(folder, CLASS_NAMES_FILE), "w", encoding="utf-8") as handle:
        json.dump(list(class_names), handle, indent=1)


def _is_h5_model(path):
    """True for an HDF5 file of a whole Keras model (Keras 2.6's model.h5), not of weights alone."""
    with h5py.File(path, "r") as handle:
        return "model_config" in handle.attrs


def _is_model_file(path):
    """True for a Keras model file this stack loads."""
    if not (os.path.isfile(path) and path.endswith(stack.MODEL_FILE_SUFFIX)):
        return False
    return not path.endswith(".h5") or _is_h5_model(path)


def _model_file(path):
    """This stack's model file meant by ``path``: itself, or a run folder's best or final model."""
    if _is_model_file(path):
        return path
    for candidate in (os.path.join(path, "best", MODEL_FILE), os.path.join(path, MODEL_FILE)):
        if os.path.isfile(candidate):
            return candidate
    return None


def _portable_model_file(path):
    """The portable weights of the saved model meant by ``path`` (a model file of either stack, or a run
    folder's best or final model), or None."""
    folders = [os.path.dirname(path)] if path.endswith(MODEL_SUFFIXES) else [os.path.join(path, "best"), path]
    for folder in folders:
        candidate = os.path.join(folder, PORTABLE_MODEL_FILE)
        if os.path.isfile(candidate):
            return candidate
    return None


def _class_names(folder, model_file):
    names_file = os.path.join(folder, CLASS_NAMES_FILE)
    if not os.path.isfile(names_file):
        raise UserError(f"{names_file} is missing: it maps the outputs of {model_file} to class names")
    with open(names_file, encoding="utf-8") as handle:
        return json.load(handle)


def _rebuild(portable, class_names):
    """The network of the run that saved ``portable`` (from its config.json), with those weights."""
    folder = os.path.dirname(portable)
    run_dir = os.path.dirname(folder) if os.path.basename(folder) == "best" else folder
    config = cli.read_run_config(run_dir)
    if config is None:
        raise UserError(f"{portable}: the run's config.json is missing from {run_dir}; it names the network "
                        "these weights belong to")
    model = build_network(types.SimpleNamespace(**config), len(class_names))
    written_on = checkpoints.load_portable_weights(model, portable)
    print(f"[model] weights read by layer name (the model file was written on {written_on})", flush=True)
    return model


def load_saved(path: str) -> tuple[keras.Model, list[str]]:
    """Load a saved model and its class names for evaluate, predict and export.

    A run folder written on the other stack holds a model file this stack
    cannot load; the network is then rebuilt from the run's config.json and
    takes the portable weights saved beside that file.

    Args:
      path: a model file or a run folder (its ``best/`` model, else its final model).
    Returns:
      ``(model, class_names)``.
    Raises:
      UserError: nothing loadable at ``path``.
    """
    model_file = _model_file(path)
    if model_file is not None:
        print(f"[model] using {model_file}", flush=True)
        names = _class_names(os.path.dirname(model_file), model_file)
        return keras.models.load_model(model_file, compile=False), names
    portable = _portable_model_file(path)
    if portable is None:
        raise UserError(f"no saved model at {path}: expected a {MODEL_FILE} file or a run folder holding "
                        f"best/{MODEL_FILE} or {MODEL_FILE} (train first, or pass the --modeldir of a "
                        "finished run)")
    print(f"[model] using {portable}", flush=True)
    names = _class_names(os.path.dirname(portable), portable)
    return _rebuild(portable, names), names


def _checkpoint_prefix(path):
    """The checkpoint meant by ``path``: a prefix, a folder of checkpoints, or a run folder (its newest)."""
    if os.path.isdir(path):
        return tf.train.latest_checkpoint(path) or checkpoints.latest_checkpoint(path)
    return path if os.path.isfile(path + ".index") else None


def _keras_layers(model_file, network, alpha):
    """The weights of a saved model by layer: ``{layer name: [arrays in the layer's weights order]}``.

    A keras.applications MobileNetV3 model file (other layer names) is mapped
    as its weights files are (:func:`_applications_layers`).
    """
    source = keras.models.load_model(model_file, compile=False)
    if source.name.lower() in KERAS_APPLICATIONS_NAMES:
        return _applications_layers(source, model_file, network, alpha)
    return {layer.name: [weight.numpy() for weight in layer.weights] for layer in source.layers}


def _portable_layers(path):
    """The weights of a portable weights file (common/checkpoints.py) by layer, as :func:`_keras_layers`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files if not key.startswith("__")}
    except (OSError, ValueError) as error:
        raise UserError(f"--weights={path}: cannot be read as a weights file ({error})") from None
    layers = {}
    for key in sorted(arrays, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
        layers.setdefault(key.rsplit("/", 1)[0], []).append(arrays[key])
    return layers


def _restore_whole_checkpoint(model, prefix):
    """Load a training checkpoint that has no portable weights file beside it (written before they were).

    Without it a checkpoint's keys do not name the layers (Keras stores a
    trainable variable under the optimizer's key), so it loads whole, through
    ``tf.train.Checkpoint(model=...)``, into a network of the same
    --model, --alpha and class count, written on this stack.
    """
    try:
        tf.train.Checkpoint(model=model).read(prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise UserError(f"--weights={prefix}: a checkpoint without its portable weights file loads only into the "
                        f"same network and class count, written on this stack ({str(error)[:200]})") from None
    return f"loaded the whole network from {prefix}"


def _copy_matching_layers(model, source_layers, source):
    """Set every layer of ``model`` whose name, weight names and weight shapes match.

    Head layers (classifier, LR-ASPP head) that differ in shape or are
    missing from the source stay as built; every backbone layer must match.

    Args:
      model: the network to initialise.
      source_layers: ``{layer name: [arrays in the layer's weights order]}`` of the earlier run.
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
        elif [tuple(w.shape) for w in layer.weights] == [tuple(v.shape) for v in weights]:
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
        layer.set_weights(source_layers[layer.name])
    tensors = sum(len(layer.weights) for layer in matched)
    message = f"loaded {len(matched)} layers ({tensors} tensors) from {source}"
    if differ:
        message += f"; new (shape differs): {', '.join(layer.name for layer in differ)}"
    if missing:
        message += f"; new (not in the source): {', '.join(layer.name for layer in missing)}"
    return message


def imagenet_weights_file(network: str, alpha: float) -> str:
    """keras.applications' ImageNet weights file of MobileNetV3 ``network`` at ``alpha``.

    Downloaded once into ``~/.keras/models/`` (keras.utils.get_file), then read from there; the
    download and the cached file must have keras.applications' MD5 sum.

    Raises:
      UserError: no such weights (another alpha), or the download cannot be reached.
    """
    if float(alpha) not in IMAGENET_ALPHAS:
        raise UserError(f"--weights=imagenet: keras.applications has ImageNet weights of MobileNetV3 at "
                        f"--alpha 0.75 and 1.0 only, not {alpha:g}")
    name = f"weights_mobilenet_v3_{network}_224_{float(alpha)}_float.h5"
    url = IMAGENET_URL + name
    try:
        return keras.utils.get_file(name, url, cache_subdir="models", file_hash=IMAGENET_MD5[network, float(alpha)])
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
      ``{layer name: [arrays]}`` for :func:`_copy_matching_layers`.
    Raises:
      UserError: the file does not load into that network, or a layer's shapes differ.
    """
    errors = []
    for include_top in (True, False):
        reference = KERAS_APPLICATIONS[network](input_shape=(224, 224, 3), alpha=alpha, include_top=include_top,
                                                weights=None, include_preprocessing=True)
        try:
            # Keras 3 warns once per layer group it skips (about 100 lines for a file of the other
            # variant, 2 even when it loads); the outcome is the one line printed or raised here.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reference.load_weights(path)
            break
        except Exception as error:  # Keras raises ValueError, KeyError or OSError by format
            errors.append(str(error).splitlines()[0][:160])
    else:
        raise UserError(f"--weights={path}: not a weights file of keras.applications.MobileNetV3"
                        f"{network.capitalize()} at --alpha={alpha:g}, with or without top ({errors[0]})")
    return _applications_layers(reference, path, network, alpha)


def _applications_layers(reference, path, network, alpha):
    """The weights of keras.applications model ``reference`` (read from ``path``) under this network's
    layer names: the i-th weighted layer of one is the i-th of the other (see :func:`_keras_applications_layers`).

    Raises:
      UserError: a layer's shapes differ (another --model or --alpha).
    """
    ours = [layer for layer in build_classifier(network, alpha, 1000, (224, 224, 3)).layers if layer.weights]
    theirs = [layer for layer in reference.layers if layer.weights]
    layers = {}
    for mine, other in zip(ours, theirs):
        shapes = [tuple(w.shape) for w in mine.weights], [tuple(w.shape) for w in other.weights]
        if shapes[0] != shapes[1]:
            raise UserError(f"--weights={path}: its layer {other.name} has shapes {shapes[1]} where this "
                            f"network's {mine.name} has {shapes[0]} (--model={network} --alpha={alpha:g}; "
                            "keras.applications keeps a 16-channel stem below alpha 0.75)")
        layers[mine.name] = [value.numpy() for value in other.weights]
    return layers


def load_initial_weights(model: keras.Model, path: str, network: str | None = None,
                         alpha: float | None = None) -> str:
    """Initialise ``model`` from an earlier run or from keras.applications weights (transfer learning).

    ``path`` is "imagenet" (keras.applications' ImageNet weights of the same
    ``network`` and ``alpha``), a keras.applications MobileNetV3 weights file
    (``.h5``) or model file, a saved model (``model.keras`` or ``model.h5``: this stack's
    model file, or the other stack's through the portable weights beside it),
    a run folder (its best or final model, else its latest checkpoint) or a
    training checkpoint (prefix, or a folder holding one; its portable weights
    when it has them, so a checkpoint of either stack loads). Every layer
    whose name and weight shapes match loads, and
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
    if path.endswith(".h5") and os.path.isfile(path) and not _is_h5_model(path):
        return _copy_matching_layers(model, _keras_applications_layers(path, network, alpha), path)
    model_file = _model_file(path)
    if model_file is not None:
        return _copy_matching_layers(model, _keras_layers(model_file, network, alpha), model_file)
    portable = _portable_model_file(path)
    if portable is not None:
        return _copy_matching_layers(model, _portable_layers(portable), portable)
    prefix = _checkpoint_prefix(path)
    if prefix is None:
        raise UserError(f"--weights={path} is neither \"imagenet\", a keras.applications .h5 file, a saved "
                        "model, a run folder nor a checkpoint")
    if os.path.isfile(checkpoints.portable_weights_path(prefix)):
        return _copy_matching_layers(model, _portable_layers(checkpoints.portable_weights_path(prefix)), prefix)
    return _restore_whole_checkpoint(model, prefix)
