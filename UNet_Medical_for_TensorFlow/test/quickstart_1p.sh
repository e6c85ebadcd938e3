#!/usr/bin/env bash
# Called by the repository's quickstart.sh with a data folder: writes a small
# synthetic ISBI-format stack there (once) and trains a narrow UNet on it
# through test/train_full_1p.sh, a few minutes on 2 CPU cores.
set -uo pipefail
data_dir="${1:?usage: bash test/quickstart_1p.sh DATA_DIR}"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"  # sets mz_python, model_dir
if [ ! -f "${data_dir}/test-volume.tif" ]; then
  (cd "${model_dir}" && "${mz_python}" -m data_loading.synthetic --data_dir="${data_dir}" --slices=30 --size=256) || exit 1
fi
cd "${model_dir}" && bash test/train_full_1p.sh --data_path="${data_dir}" --base_filters=8 --tile_size=252 \
  --batch_size=4 --learning_rate=0.001 --max_steps=300 --log_every=50
