#!/usr/bin/env bash
# ModelZoo accuracy run on one device: train_and_evaluate on one fold, then the
# summary with TrainAccuracy = NVIDIA's eval_dice_score of the validation slices
# (runtime/losses.nvidia_eval_losses). Run from the model directory or from test/:
#   bash test/train_full_1p.sh --data_path=DIR [flags]   (--help lists them)
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
source "${cur_path}/model_flags.sh"
mz_parse_flags "$@"
mz_run_folder
model_args
# ActualFPS leaves out the first TRAIN interval (steps 1..log_every): it holds
# the graph tracing and compilation and is many times slower than the rest.
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=acc \
  --warmup_steps="${log_every}" --accuracy_key=eval_dice_score --extra_keys=dice,dice_soft,iou,pixel_error -- \
  "${mz_python}" "${model_dir}/main.py" --exec_mode=train_and_evaluate "${args[@]}"
