#!/usr/bin/env bash
# Environment of this model's scripts: the shared Ascend toolkit set-up
# (harmless where the toolkit is absent). Nothing model-specific is needed.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/ascend_env.sh"
