#!/usr/bin/env bash
# Checks the house rules (tools/check_repository.py) and lints (tools/lint.sh: ruff's pyflakes
# rules on every .py, shellcheck on every .sh; zero findings), then runs every test of common/ and
# of each model directory on both stacks:
#   default  TF 2.21 / Keras 3 in .venv (requirements.txt)
#   tf26     TF 2.6.5 / Keras 2.6 in .venv-tf26 (requirements-tf26.txt, Python 3.9),
#            the stack of the Ascend adapter; skipped in one line without a Python 3.9.
# Each venv is created or updated first (common/use_stack.sh). Each directory runs in its own pytest
# process because the model directories have modules of the same name.
# RUN_TESTS_STACKS="default" (or "tf26") runs one stack; arguments go to pytest. The two stacks
# run at the same time (see below; RUN_TESTS_PARALLEL=0 runs them one after the other).
# --quick (the first argument): the same checks, then the unit tests only, on the default stack:
# the tests marked `subprocess` (they start a script or another process) or `slow` (a long training
# or inference in the test's own process) are left out (common/tests/processes.py), and a test that
# starts a process unmarked fails (MZ_TESTS_QUICK=1). A few minutes.
# Exits non-zero when any test fails, a house rule is broken or the lint finds anything.
set -uo pipefail
cd "$(dirname "$0")" || exit 1

quick=()
if [ "${1:-}" = --quick ]; then
  shift
  quick=(-m "not subprocess and not slow")
  export MZ_TESTS_QUICK=1
  RUN_TESTS_STACKS="${RUN_TESTS_STACKS:-default}"
fi

report_dir="$(mktemp -d)"
trap 'rm -rf "${report_dir}"' EXIT
status=0

# run_stack NAME: every directory's tests with the venv already first on PATH.
run_stack() {
  mkdir -p "${report_dir}/$1"
  for dir in common *_for_TensorFlow; do
    [ -d "${dir}/tests" ] || continue
    echo "=== [$1] ${dir}"
    (cd "${dir}" && python -m pytest -q -p no:cacheprovider --junitxml="${report_dir}/$1/${dir}.xml" tests \
      ${quick[@]+"${quick[@]}"} "${@:2}")
    rc=$?
    if [ "${rc}" -ne 0 ]; then
      echo "[run_tests] $1 ${dir}: pytest exit status ${rc}"
      status=1
    fi
  done
  return "${status}"
}

# The house rules (licence headers, layout, imports, function length, ...) and the lint are checks,
# not tests: a breach fails the run, and the tests still run.
checks_failed=()
python3 tools/check_repository.py || checks_failed+=("tools/check_repository.py")
bash tools/lint.sh || checks_failed+=("tools/lint.sh")
[ "${#checks_failed[@]}" -eq 0 ] || status=1

# Both venvs are set up before any test runs: the cross-stack tests use the other one.
stacks=()
for stack in ${RUN_TESTS_STACKS:-default tf26}; do
  (source common/use_stack.sh "${stack}" > /dev/null)
  rc=$?
  if [ "${rc}" -eq 3 ] && [ "${stack}" = tf26 ]; then
    echo "[run_tests] no Python 3.9 here (python3.9 or pyenv): the TF 2.6.5 stack is not tested"
    continue
  fi
  [ "${rc}" -eq 0 ] || { echo "[run_tests] setting up the ${stack} stack failed"; exit 1; }
  stacks+=("${stack}")
done
# The stacks run side by side (RUN_TESTS_PARALLEL=0: one after the other): much of a test's time is
# single-threaded (starting Python and TensorFlow, tracing graphs), so two suites share two cores
# well. The first stack prints as it goes, the second when it is done; the second runs in a copy of
# the tree (git metadata included, the venvs linked), because the script tests of both would write
# the same test/output/ folders.
run_one() {
  (source common/use_stack.sh "$1" > /dev/null && run_stack "$@")
}
if [ "${#stacks[@]}" -lt 2 ] || [ "${RUN_TESTS_PARALLEL:-1}" = 0 ]; then
  for stack in "${stacks[@]}"; do
    run_one "${stack}" "$@" || status=1
  done
else
  copy="${report_dir}/tree"
  mkdir -p "${copy}"
  tar -cf - --exclude=./.venv --exclude=./.venv-tf26 --exclude=./.venv-lint --exclude=./data \
    --exclude='./*/test/output' --exclude='__pycache__' . | tar -xf - -C "${copy}"
  ln -s "${PWD}/.venv" "${copy}/.venv"
  ln -s "${PWD}/.venv-tf26" "${copy}/.venv-tf26"
  (cd "${copy}" && run_one "${stacks[1]}" "$@") > "${report_dir}/${stacks[1]}.out" 2>&1 &
  second=$!
  run_one "${stacks[0]}" "$@" || status=1
  wait "${second}" || status=1
  cat "${report_dir}/${stacks[1]}.out"
fi

[ "${#checks_failed[@]}" -eq 0 ] || echo "[run_tests] failed before the tests: ${checks_failed[*]} (its lines are at the top)"
python3 - "${report_dir}" <<'PY' || status=1
import glob, os, sys, xml.etree.ElementTree as ET
totals = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*.xml"))):
    counts = totals.setdefault(os.path.basename(os.path.dirname(path)), [0, 0, 0])
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests, fail = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        counts[0] += tests - fail - skip; counts[1] += fail; counts[2] += skip
for stack, (passed, failed, skipped) in totals.items():
    print(f"stack {stack}: {passed} passed, {failed} failed, {skipped} skipped")
passed, failed, skipped = (sum(c[i] for c in totals.values()) for i in range(3))
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or not passed else 0)
PY
exit "${status}"
