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
"""The shorthand flags of runtime/flags.py: --patch_size, --centres and --n4."""

import pytest

from common.npu_utils import UserError
from runtime import flags


def test_patch_size_and_centres_set_the_flags_they_stand_for(tmp_path):
    args = flags.parse_args(["-r", str(tmp_path), "--patch_size", "30", "--centres=4", "--n4"])
    assert (args.patch_width, args.patch_height, args.patch_depth, args.label_size) == (30, 30, 30, 4)
    assert (args.tumour_centres, args.background_centres, args.n4_correction) == (4, 4, True)
    args = flags.parse_args(["-r", str(tmp_path)])  # without them: the reference's patch and centres
    assert (args.patch_width, args.label_size, args.tumour_centres) == (38, 12, 200)


@pytest.mark.parametrize("argv, given", [(["--patch_size=30", "-ws", "30"], "--patch_width"),
                                         (["--centres=4", "--tumour_centres=4"], "--tumour_centres")])
def test_a_shorthand_and_a_flag_it_sets_are_refused_together(tmp_path, argv, given):
    with pytest.raises(UserError, match=f"not both \\({given} given\\)"):
        flags.parse_args(["-r", str(tmp_path), *argv])
