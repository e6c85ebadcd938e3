#!/usr/bin/env bash
# What common/train_script.sh needs to know of this model besides main.py's flags: its name in
# the ModelZoo summary. Every flag and default is main.py's (runtime/flags.py).
# shellcheck disable=SC2034  # read by common/train_script.sh, which sources this file
Network="MobileNetV3_for_TensorFlow"
