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
"""The paper's block tables as data.

Howard et al., "Searching for MobileNetV3", ICCV 2019 (arXiv:1905.02244),
Table 1 (MobileNetV3-Large) and Table 2 (MobileNetV3-Small). Each row is one
bottleneck ("bneck"): depthwise kernel, expansion width, output width,
squeeze-and-excite, non-linearity (RE = ReLU, HS = h-swish) and stride, at
width multiplier 1.0 and input 224x224.
"""

import collections

BlockSpec = collections.namedtuple("BlockSpec", "kernel expanded filters se activation stride")

# Table 1: MobileNetV3-Large.
LARGE_BLOCKS = (
    BlockSpec(3, 16, 16, False, "RE", 1),
    BlockSpec(3, 64, 24, False, "RE", 2),
    BlockSpec(3, 72, 24, False, "RE", 1),
    BlockSpec(5, 72, 40, True, "RE", 2),
    BlockSpec(5, 120, 40, True, "RE", 1),
    BlockSpec(5, 120, 40, True, "RE", 1),
    BlockSpec(3, 240, 80, False, "HS", 2),
    BlockSpec(3, 200, 80, False, "HS", 1),
    BlockSpec(3, 184, 80, False, "HS", 1),
    BlockSpec(3, 184, 80, False, "HS", 1),
    BlockSpec(3, 480, 112, True, "HS", 1),
    BlockSpec(3, 672, 112, True, "HS", 1),
    BlockSpec(5, 672, 160, True, "HS", 2),
    BlockSpec(5, 960, 160, True, "HS", 1),
    BlockSpec(5, 960, 160, True, "HS", 1),
)

# Table 2: MobileNetV3-Small.
SMALL_BLOCKS = (
    BlockSpec(3, 16, 16, True, "RE", 2),
    BlockSpec(3, 72, 24, False, "RE", 2),
    BlockSpec(3, 88, 24, False, "RE", 1),
    BlockSpec(5, 96, 40, True, "HS", 2),
    BlockSpec(5, 240, 40, True, "HS", 1),
    BlockSpec(5, 240, 40, True, "HS", 1),
    BlockSpec(5, 120, 48, True, "HS", 1),
    BlockSpec(5, 144, 48, True, "HS", 1),
    BlockSpec(5, 288, 96, True, "HS", 2),
    BlockSpec(5, 576, 96, True, "HS", 1),
    BlockSpec(5, 576, 96, True, "HS", 1),
)

# The rest of each table: the stem (3x3 conv, stride 2, h-swish), the 1x1
# conv after the last bneck (with BN, h-swish), and the 1x1 conv after the
# global pool (no BN, h-swish) that feeds the classifier.
NetworkSpec = collections.namedtuple("NetworkSpec", "stem blocks last_conv head")
NETWORKS = {
    "large": NetworkSpec(stem=16, blocks=LARGE_BLOCKS, last_conv=960, head=1280),
    "small": NetworkSpec(stem=16, blocks=SMALL_BLOCKS, last_conv=576, head=1024),
}

# The paper's squeeze-and-excite reduces to a quarter of the expanded width.
SE_RATIO = 0.25
