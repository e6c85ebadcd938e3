#!/usr/bin/env bash
# The seed's short single-device run: 10 training steps of the full UNet,
# batch 1. Set data_dir to the folder with the ISBI 2012 stacks; further
# main.py flags may follow (a later flag wins).
#   data_dir=DIR bash loop.sh [main.py flags]
data_dir="${data_dir:-./data}"
model_dir="${model_dir:-./results/loop}"
cd "$(dirname "$0")" || exit 1
# Which python runs main.py, by common/train_script.sh's rule: a venv's python3 first on PATH (an
# activated venv, .venv or .venv-tf26), else the repository's .venv, else the system's python3.
python="python3"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x ../.venv/bin/python ] \
   && [ ! -f "$(dirname "$(command -v python3 || echo /nonexistent/python3)")/../pyvenv.cfg" ]; then
  python="../.venv/bin/python"
fi
"${python}" main.py --exec_mode=train --batch_size=1 --max_steps=10 --log_every=1 \
  --data_dir="${data_dir}" --model_dir="${model_dir}" --resume_training "$@"
