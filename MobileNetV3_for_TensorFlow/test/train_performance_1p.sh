#!/usr/bin/env bash
# Performance run on one device: a short training (--train_steps steps), no final evaluation.
# The summary is ${Network}_bs${batch_size}_${RANK_SIZE}p_perf.
#   bash test/train_performance_1p.sh --data_path=DIR [--model=small] [--batch_size=N] ...
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script_legacy.sh"
source "${cur_path}/model_flags.sh" "$@"
train_epochs=1
train_steps=50
mz_parse_flags "$@"
mz_run_folder
model_args
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=perf --warmup_steps="$(model_warmup 5)" -- \
  "${mz_python}" "${model_dir}/main.py" --mode=train "${args[@]}"
