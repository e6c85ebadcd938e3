#!/usr/bin/env bash
# Called by the repository's quickstart.sh from the model directory with a
# data folder: writes the synthetic class folders there (once) and trains
# MobileNetV3-Small briefly through test/train_full_1p.sh (a few minutes on 2 CPU cores).
set -uo pipefail
data_dir="${1:?usage: bash test/quickstart_1p.sh DATA_DIR}"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"  # sets mz_python, model_dir
cd "${model_dir}" || exit 1
"${mz_python}" -m data_loading.synthetic --output="${data_dir}" --classes=4 --size=64 || exit 1
bash test/train_full_1p.sh --data_path="${data_dir}" --class_number=0 --height=64 --width=64 \
  --alpha=0.5 --batch_size=16 --train_epochs=8 --learning_rate=0.002 --bn_momentum=0.9 --log_every=5
