#!/usr/bin/env bash
# Sourced by run_tests.sh and quickstart.sh: makes sure .venv in the
# repository root exists and holds requirements.txt, and puts it first on PATH.
# Re-installs only when requirements.txt or the Python version changed.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv"
python_bin="${PYTHON:-python3}"
stamp_want="$(cat "${repo_root}/requirements.txt"; "${python_bin}" --version)"
if [ ! -x "${venv}/bin/python" ] || ! "${venv}/bin/python" -c 'import sys' 2>/dev/null; then
  echo "[setup] creating ${venv}"
  rm -rf "${venv}"
  "${python_bin}" -m venv "${venv}" || { echo "[setup] error: '${python_bin} -m venv' failed (on Debian: apt-get install python3-venv)" >&2; return 1; }
fi
if [ "$(cat "${venv}/.requirements-stamp" 2>/dev/null)" != "${stamp_want}" ]; then
  echo "[setup] installing requirements.txt into ${venv}"
  "${venv}/bin/python" -m pip install --quiet --upgrade pip || return 1
  "${venv}/bin/python" -m pip install --quiet -r "${repo_root}/requirements.txt" || { echo "[setup] error: pip install -r requirements.txt failed" >&2; return 1; }
  printf '%s' "${stamp_want}" > "${venv}/.requirements-stamp"
fi
export PATH="${venv}/bin:${PATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
