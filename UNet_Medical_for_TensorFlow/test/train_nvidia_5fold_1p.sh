#!/usr/bin/env bash
# NVIDIA's UNet_Medical recipe in one command: its 5-fold training on its
# five overlapping folds (--fold_scheme=nvidia) on one device (batch 8, 6,400
# steps, Adam at 1e-4, its augmentation set, its input path: slices resized
# to 388 and zero-padded to 572, AMP and XLA where the device has them), then
# the mean of eval_dice_score over the folds with its population and sample std.
# NVIDIA reports 0.8900 (TF2, A100, TF32) / 0.8902 (AMP) for this mean.
# Any test/train_full_1p.sh flag given here overrides the recipe's (the later
# value wins); --ckpt_path=DIR keeps each fold's run in DIR/fold<k>.
#   bash test/train_nvidia_5fold_1p.sh --data_path=DIR [flags]
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_5fold_1p.sh" \
  --fold_scheme=nvidia --batch_size=8 --train_steps=6400 --learning_rate=0.0001 --augment=True --augment_set=nvidia \
  --input_mode=resize --base_filters=64 --tile_size=572 --precision_mode=allow_mix_precision --use_xla=True \
  --log_every=100 "$@"
