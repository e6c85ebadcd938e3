#!/usr/bin/env bash
# Sourced as `source common/use_stack.sh default|tf26` by run_tests.sh and quickstart.sh:
# creates or updates that stack's venv (ensure_venv.sh) and puts it first on PATH.
#   default  TF 2.21 / Keras 3: .venv from requirements.txt with python3 (or $PYTHON)
#   tf26     TF 2.6.5 / Keras 2.6, the Ascend adapter's TensorFlow: .venv-tf26 from
#            requirements-tf26.txt with a Python 3.9 (find_python39.sh)
# Returns 3 with one line when no Python 3.9 is found for tf26, 2 for an unknown stack.
case "${1:-default}" in
  default)
    VENV_NAME=.venv REQUIREMENTS=requirements.txt ;;
  tf26)
    if ! PYTHON="$(bash "$(dirname "${BASH_SOURCE[0]}")/find_python39.sh")"; then
      echo "[setup] no Python 3.9 here (python3.9 on PATH or pyenv's): the TF 2.6.5 stack cannot be set up"
      return 3
    fi
    VENV_NAME=.venv-tf26 REQUIREMENTS=requirements-tf26.txt ;;
  *)
    echo "[setup] unknown stack '$1' (default or tf26)" >&2
    return 2 ;;
esac
export VENV_NAME REQUIREMENTS
[ -n "${PYTHON:-}" ] && export PYTHON
source "$(dirname "${BASH_SOURCE[0]}")/ensure_venv.sh"
