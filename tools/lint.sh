#!/usr/bin/env bash
# The lint gate that run_tests.sh runs before the tests (also with --quick): ruff's pyflakes rules
# (--select F: unused imports and variables, undefined names, redefinitions, ...) on every .py file
# and shellcheck (following the files a script sources) on every .sh file that git would commit.
# The tools are requirements-lint.txt's, in their own venv (.venv-lint, made or updated here).
# Prints every finding and one summary line; exits 1 when there is a finding.
#   bash tools/lint.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
VENV_NAME=.venv-lint REQUIREMENTS=requirements-lint.txt
export VENV_NAME REQUIREMENTS
# shellcheck source=../common/ensure_venv.sh
source common/ensure_venv.sh > /dev/null || { echo "[lint] setting up .venv-lint failed"; exit 1; }

mapfile -d '' python_files < <(git ls-files -z --cached --others --exclude-standard -- '*.py')
mapfile -d '' shell_files < <(git ls-files -z --cached --others --exclude-standard -- '*.sh')
findings=0
# --isolated: these rules only, whatever configuration a parent folder holds.
ruff_out="$(ruff check --isolated --select F --no-cache --output-format concise --quiet "${python_files[@]}")"
[ -n "${ruff_out}" ] && { echo "${ruff_out}"; findings=$((findings + $(grep -c . <<< "${ruff_out}"))); }
shellcheck_out="$(shellcheck --external-sources --source-path=SCRIPTDIR --format=gcc "${shell_files[@]}")"
[ -n "${shellcheck_out}" ] && { echo "${shellcheck_out}"; findings=$((findings + $(grep -c . <<< "${shellcheck_out}"))); }
echo "[lint] ruff (pyflakes rules) on ${#python_files[@]} .py files, shellcheck on ${#shell_files[@]} .sh files:" \
  "${findings} finding(s)"
[ "${findings}" -eq 0 ]
