#!/usr/bin/env bash
# NVIDIA's UNet_Medical recipe in one command: its 5-fold training on its
# five overlapping folds (--fold_scheme=nvidia) on one device (batch 8, 6,400
# steps, Adam at 1e-4, its augmentation set, its input path: slices resized
# to 388 and zero-padded to 572, XLA where the device has it), then the mean
# of eval_dice_score over the folds with its population and sample std.
# Precision is NVIDIA's: float32 (TF32 on an Ampere GPU, float32 kept on
# Ascend: --precision_mode=must_keep_origin_dtype) unless --amp is given
# (--precision_mode=allow_mix_precision), as NVIDIA's --amp.
# NVIDIA reports 0.8900 (TF2, A100, TF32) / 0.8902 (AMP) for this mean.
# Steps: NVIDIA divides --max_steps by the GPU count (on N GPUs each runs
# 6400/N steps of batch 8 per GPU, 6400 x 8 images in all), while
# --train_steps here counts the steps every device runs. On one device both
# are 6,400; NVIDIA's N-GPU run corresponds to --train_steps=6400/N on N
# devices (test/train_full_8p.sh with RANK_SIZE=N).
# Any test/train_full_1p.sh flag given here overrides the recipe's (the later
# value wins); --ckpt_path=DIR keeps each fold's run in DIR/fold<k>.
#   bash test/train_nvidia_5fold_1p.sh --data_path=DIR [--amp] [flags]
precision=must_keep_origin_dtype
passed=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --amp=True|--amp=true|--amp=1) precision=allow_mix_precision ;;
    --amp=False|--amp=false|--amp=0) precision=must_keep_origin_dtype ;;
    --amp=*) echo "[Error] --amp=${1#*=}: expected True or False" >&2; exit 2 ;;
    --amp)  # bare, or followed by its value
      precision=allow_mix_precision
      case "${2:-}" in
        True|true|1) shift ;;
        False|false|0) precision=must_keep_origin_dtype; shift ;;
      esac ;;
    *) passed+=("$1") ;;
  esac
  shift
done
echo "[recipe] NVIDIA's precision: --precision_mode=${precision} (float32 unless --amp); 6,400 steps on one" \
  "device as NVIDIA's 1-GPU run (NVIDIA's N-GPU run: --max_steps=6400/N on N devices)"
MZ_SCRIPT="${MZ_SCRIPT:-${BASH_SOURCE[0]}}" exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_5fold_1p.sh" \
  --fold_scheme=nvidia --batch_size=8 --max_steps=6400 --learning_rate=0.0001 --augment=True --augment_set=nvidia \
  --input_mode=resize --base_filters=64 --tile_size=572 --precision_mode="${precision}" --use_xla=True \
  --log_every=100 "${passed[@]}"
