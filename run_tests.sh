#!/usr/bin/env bash
# Runs every test of common/ and of each model directory in the repository's
# .venv (created or updated first). Each directory runs in its own pytest
# process because the model directories have modules of the same name.
# Exits non-zero when any test fails.
set -uo pipefail
cd "$(dirname "$0")"
source common/ensure_venv.sh || exit 1

report_dir="$(mktemp -d)"
trap 'rm -rf "${report_dir}"' EXIT
status=0
for dir in common *_for_TensorFlow; do
  [ -d "${dir}/tests" ] || continue
  echo "=== ${dir}"
  (cd "${dir}" && python -m pytest -q -p no:cacheprovider --junitxml="${report_dir}/${dir}.xml" tests "$@")
  rc=$?
  if [ "${rc}" -ne 0 ]; then
    echo "[run_tests] ${dir}: pytest exit status ${rc}"
    status=1
  fi
done
python - "${report_dir}" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests, fail = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        passed += tests - fail - skip; failed += fail; skipped += skip
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or not passed else 0)
PY
[ $? -eq 0 ] || status=1
exit "${status}"
