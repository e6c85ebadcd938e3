#!/usr/bin/env bash
# Sourced by run_tests.sh and quickstart.sh: makes sure a venv in the
# repository root exists and holds its requirements file, and puts it first on
# PATH. Re-installs only when the requirements or the Python version changed.
#   VENV_NAME     the venv folder (default .venv)
#   REQUIREMENTS  the requirements file (default requirements.txt)
#   PYTHON        the interpreter that creates it (default python3)
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/${VENV_NAME:-.venv}"
requirements="${repo_root}/${REQUIREMENTS:-requirements.txt}"
python_bin="${PYTHON:-python3}"
stamp_want="$(cat "${requirements}"; "${python_bin}" --version)"
if [ ! -x "${venv}/bin/python" ] || ! "${venv}/bin/python" -c 'import sys' 2>/dev/null; then
  echo "[setup] creating ${venv}"
  rm -rf "${venv}"
  "${python_bin}" -m venv "${venv}" || { echo "[setup] error: '${python_bin} -m venv' failed (on Debian: apt-get install python3-venv)" >&2; return 1; }
fi
if [ "$(cat "${venv}/.requirements-stamp" 2>/dev/null)" != "${stamp_want}" ]; then
  echo "[setup] installing $(basename "${requirements}") into ${venv}"
  "${venv}/bin/python" -m pip install --quiet --upgrade pip || return 1
  "${venv}/bin/python" -m pip install --quiet -r "${requirements}" || { echo "[setup] error: pip install -r $(basename "${requirements}") failed" >&2; return 1; }
  printf '%s' "${stamp_want}" > "${venv}/.requirements-stamp"
fi
export PATH="${venv}/bin:${PATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
