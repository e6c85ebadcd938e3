#!/usr/bin/env bash
# Environment of this model's test/*.sh scripts: the shared Ascend toolkit
# set-up (harmless where the toolkit is not installed). Nothing model-specific.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/ascend_env.sh"
