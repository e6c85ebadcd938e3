#!/usr/bin/env bash
# The Ascend toolkit and TF adapter environment, sourced by every model's test/env.sh.
# Where the toolkit is not installed (GPU and CPU machines) it changes nothing
# but the job defaults below, so sourcing it is always safe.
install_path="${ASCEND_INSTALL_PATH:-/usr/local/Ascend}"
if [ -d "${install_path}" ]; then
  if [ -f "${install_path}/ascend-toolkit/set_env.sh" ]; then
    # shellcheck source=/dev/null  # the toolkit's, outside the repository
    source "${install_path}/ascend-toolkit/set_env.sh"
  else
    export LD_LIBRARY_PATH="${install_path}/driver/lib64:${install_path}/driver/lib64/common:${install_path}/driver/lib64/driver:${install_path}/fwkacllib/lib64:${install_path}/add-ons:${LD_LIBRARY_PATH:-}"
    export PYTHONPATH="${install_path}/fwkacllib/python/site-packages:${install_path}/tfplugin/python/site-packages:${PYTHONPATH:-}"
    export PATH="${install_path}/fwkacllib/ccec_compiler/bin:${install_path}/fwkacllib/bin:${PATH}"
    export ASCEND_OPP_PATH="${install_path}/opp"
    export ASCEND_AICPU_PATH="${install_path}"
  fi
  # The TF adapter's own libraries (npu_device), as ModelZoo's TF2 scripts source them.
  if [ -f "${install_path}/tfplugin/set_env.sh" ]; then
    # shellcheck source=/dev/null  # the adapter's, outside the repository
    source "${install_path}/tfplugin/set_env.sh"
  fi
fi
export JOB_ID="${JOB_ID:-10087}"
export ASCEND_GLOBAL_LOG_LEVEL="${ASCEND_GLOBAL_LOG_LEVEL:-3}"
export ASCEND_DEVICE_ID="${ASCEND_DEVICE_ID:-0}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
