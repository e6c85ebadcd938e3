#!/usr/bin/env bash
# Prints the path of a Python 3.9 (the newest Python the Ascend adapter's TF 2.6.5
# supports): python3.9 on PATH, else pyenv's newest 3.9. Prints nothing and
# exits 1 when there is none.
if python3.9 -c 'import sys' >/dev/null 2>&1; then
  command -v python3.9
  exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.9(\.[0-9]+)?$' | sort -t. -k3 -n | tail -n 1)"
  if [ -n "${version}" ] && [ -x "$(pyenv prefix "${version}")/bin/python3.9" ]; then
    echo "$(pyenv prefix "${version}")/bin/python3.9"
    exit 0
  fi
fi
exit 1
