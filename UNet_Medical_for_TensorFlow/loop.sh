#!/usr/bin/env bash
# The seed's short single-device run: 10 training steps of the full UNet,
# batch 1. Set data_dir to the folder with the ISBI 2012 stacks.
data_dir="${data_dir:-./data}"
model_dir="${model_dir:-./results/loop}"
cd "$(dirname "$0")" || exit 1
python="../.venv/bin/python"
[ -x "${python}" ] || python=python3
"${python}" main.py --exec_mode=train --batch_size=1 --max_steps=10 --log_every=1 \
  --data_dir="${data_dir}" --model_dir="${model_dir}" --resume_training
