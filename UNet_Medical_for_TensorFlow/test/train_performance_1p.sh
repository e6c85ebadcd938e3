#!/usr/bin/env bash
# ModelZoo performance run on one device: a short --benchmark training (no
# checkpoints), FPS averaged after the warm-up steps.
#   bash test/train_performance_1p.sh --data_path=DIR [flags]   (--help lists them)
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
source "${cur_path}/model_flags.sh"
train_steps=50
log_every=1
warmup_steps=10
mz_parse_flags "$@"
mz_run_folder
model_args
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=perf \
  --warmup_steps="${warmup_steps}" \
  --extra_keys=throughput,latency_ms_mean,latency_ms_p90,latency_ms_p95,latency_ms_p99 -- \
  "${mz_python}" "${model_dir}/main.py" --exec_mode=train --benchmark --warmup_steps="${warmup_steps}" \
  "${args[@]}"
