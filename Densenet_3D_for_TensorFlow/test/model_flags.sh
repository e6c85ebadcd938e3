#!/usr/bin/env bash
# The model flags shared by test/train_*.sh: defaults, parsing, help, and the
# main.py arguments they become. Sourced after common/train_script.sh, whose
# flag loop owns the common names (--data_path, --batch_size, --train_epochs,
# --train_steps with its aliases --max_steps/--max_step, --learning_rate,
# --ckpt_path, --resume, --checkpoint_every, --keep_checkpoints); this file
# only sets their defaults.

Network="Densenet_3D_for_TensorFlow"
batch_size=2          # patches per device and step (-bs)
train_epochs=5        # epochs (-e); one epoch = 400 patches per case
train_steps=0         # stop after this many steps (--max_steps; 0: all epochs)
learning_rate=5e-4    # Adam, constant (-lr)
checkpoint_every=1000 # steps between checkpoints (--checkpoint_every); each epoch's end is one too
log_every=20          # steps between TRAIN lines (--log_every_steps); also the scripts' warm-up
model_name=dense24    # dense24 | dense48 | no-dense | dense24_nocorrection (-mn)
n4=""                 # -nc; empty: main.py's default (True, False for dense24_nocorrection)
patch_size=38         # training patch edge (-ws/-hs/-cs); labelled centre = patch_size - 26 (-ps)
centres=200           # tumour and background patch centres per case and epoch, each
width_multiplier=1.0  # 1.0 is the paper's network; smaller only for smoke tests
block_size=102        # block inference: kept block edge (every block this cube plus a 13-voxel margin)
seed=1234
load_path=""          # -lp: initial weights (fine-tuning) from a run folder, checkpoints/ or a prefix
inference=block       # block | window (the reference's 38^3 windows)
skip_bad_cases=False  # leave out bad cases (listed) instead of stopping
n4_cache_dir=""       # corrected volumes of read-only data; empty: main.py's per-user cache folder

# Consumes one model flag; returns 1 when $1 is not one of them.
model_flag() {
  case "$1" in
    --model_name=*) model_name="${1#*=}" ;;
    --n4=*) n4="${1#*=}" ;;
    --patch_size=*) patch_size="${1#*=}" ;;
    --centres=*) centres="${1#*=}" ;;
    --width_multiplier=*) width_multiplier="${1#*=}" ;;
    --block_size=*) block_size="${1#*=}" ;;
    --seed=*) seed="${1#*=}" ;;
    --log_every=*) log_every="${1#*=}" ;;
    --load_path=*) load_path="${1#*=}" ;;
    --inference=*) inference="${1#*=}" ;;
    --skip_bad_cases=*) skip_bad_cases="${1#*=}" ;;
    --skip_bad_cases) skip_bad_cases=True ;;
    --n4_cache_dir=*) n4_cache_dir="${1#*=}" ;;
    *) return 1 ;;
  esac
}

model_help() {
  cat <<HELP
    --model_name=NAME        dense24 | dense48 | no-dense | dense24_nocorrection (default ${model_name})
    --n4=True|False          N4 bias-field correction (default: True, False for dense24_nocorrection)
    --patch_size=N           training patch edge; the labelled centre is N-26 (default ${patch_size})
    --centres=N              tumour and background patch centres per case and epoch, each (default ${centres})
    --width_multiplier=F     network width scale, 1.0 = paper (default ${width_multiplier})
    --block_size=N           block inference: largest kept block edge (default ${block_size})
    --seed=N                 split, sampling and initialisation seed (default ${seed})
    --log_every=N            steps between TRAIN lines, also the warm-up: ActualFPS leaves out each
                             run segment's first, graph-tracing, step (default ${log_every})
    --load_path=PATH         -lp: initial weights from a run folder, its checkpoints/ or a prefix (default none)
    --inference=METHOD       block | window (the reference's 38^3 windows) (default ${inference})
    --skip_bad_cases=True|False  leave out bad cases instead of stopping (default ${skip_bad_cases})
    --n4_cache_dir=DIR       corrected volumes of read-only data, kept across runs; never inside
                             test/output/, which every run recreates (default: a per-user cache folder)
HELP
}

# The main.py arguments of the common and model flags (after mz_parse_flags
# and mz_run_folder).
model_args() {
  args=(-r "${data_path}" -mn "${model_name}" -bs "${batch_size}" -e "${train_epochs}"
        --max_steps="${train_steps}" -lr "${learning_rate}"
        -ws "${patch_size}" -hs "${patch_size}" -cs "${patch_size}" -ps "$((patch_size - 26))"
        --tumour_centres="${centres}" --background_centres="${centres}"
        --width_multiplier="${width_multiplier}" --block_size="${block_size}" --seed="${seed}"
        --log_every_steps="${log_every}"
        --model_dir="${run_folder}" --resume="${run_resume}" --checkpoint_every="${checkpoint_every}"
        --keep_checkpoints="${keep_checkpoints}"
        --inference="${inference}" --skip_bad_cases="${skip_bad_cases}")
  if [ -n "${n4}" ]; then
    args+=(-nc "${n4}")
  fi
  if [ -n "${load_path}" ]; then
    args+=(-lp "$(realpath -m "${load_path}")")  # main.py runs from the model directory
  fi
  if [ -n "${n4_cache_dir}" ]; then
    mkdir -p "${n4_cache_dir}" || exit 1
    n4_cache_dir="$(cd "${n4_cache_dir}" && pwd)"
    case "${n4_cache_dir}/" in
      "${cur_path}/output/"*)
        echo "[Error] --n4_cache_dir=${n4_cache_dir} is inside ${cur_path}/output, which every run recreates" >&2
        exit 1 ;;
    esac
    args+=(--n4_cache_dir="${n4_cache_dir}")
  fi
}
