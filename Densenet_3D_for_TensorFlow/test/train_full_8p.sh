#!/usr/bin/env bash
# Accuracy run on RANK_SIZE devices (default 8): one data-parallel process per
# device through common/npu_utils, each sampling patches from its own share of
# the training cases; rank 0 saves checkpoints and tests.
#   RANK_SIZE=8 bash test/train_full_8p.sh --data_path=BraTS2017/HGG
export RANK_SIZE="${RANK_SIZE:-8}"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
source "${cur_path}/model_flags.sh"
parse_flags "$@"
model_args
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=acc --warmup_steps=1 \
  --accuracy_key=wt_dice --extra_keys=tc_dice,et_dice,patches_per_sec \
  -- "${mz_python}" "${model_dir}/main.py" --mode=train_test "${args[@]}" --model_dir={output_dir}/ckpt
