#!/usr/bin/env bash
# Environment of the test/train_*.sh scripts: the shared Ascend set-up (it
# changes nothing on machines without the toolkit). Nothing model-specific.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/ascend_env.sh"
