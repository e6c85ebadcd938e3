#!/usr/bin/env bash
# The seed's short single-device run: 10 training steps of the full UNet, batch 1,
# into ./results/loop. The dataset: data_dir (a variable, as in the seed's loop.sh,
# default ./data) or --data_dir/--data_path; any main.py flag may follow and wins
# over the ones set here (python3 main.py --help lists them). Run from anywhere:
#   data_dir=DIR bash loop.sh [main.py flags]
#   bash loop.sh --data_dir DIR --max_steps=20
here="$(cd "$(dirname "$0")" && pwd)"
data_dir="${data_dir:-${here}/data}"
model_dir="${model_dir:-${here}/results/loop}"
# Which python runs main.py, by common/train_script.sh's rule: a venv's python3 first on PATH (an
# activated venv, .venv or .venv-tf26), else the repository's .venv, else the system's python3.
python="python3"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "${here}/../.venv/bin/python" ] \
   && [ ! -f "$(dirname "$(command -v python3 || echo /nonexistent/python3)")/../pyvenv.cfg" ]; then
  python="${here}/../.venv/bin/python"
fi
exec "${python}" "${here}/main.py" --mode=train --batch_size=1 --max_steps=10 --log_every=1 \
  --data_path="${data_dir}" --model_dir="${model_dir}" --resume "$@"
