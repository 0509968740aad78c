# Shared by every recipe script under scripts/pretrain and scripts/linear; sourced, never run.
#
# A recipe script lives at scripts/<pretrain|linear>/<dataset>/<recipe>.sh, calls
# setup_pretrain or setup_linear with its own arguments, then runs one python command:
#   python main_pretrain.py "${ZOO_ARGS[@]}" <recipe overrides> "${USER_ARGS[@]}"
#   python main_linear.py "${ZOO_ARGS[@]}" <protocol overrides> "${USER_ARGS[@]}"
# ZOO_ARGS starts with the user's flags (--cfg job, --help, ...: Hydra wants them before the
# overrides); USER_ARGS, the user's overrides, come last, so they win over the recipe's.
#
# A variant, a recipe that differs from another script's only in a few values, runs that script
# (its base) with those values instead of repeating it:
#   pretrain_variant BASE GLOBAL_BATCH GPUS NODES [OVERRIDE...] -- "$@"
#   linear_variant BASE [OVERRIDE...] -- "$@"
# BASE is a path relative to the variant's folder; the variant's header says what it changes
# (# Variant: ...). The base then runs as the variant: with the variant's name (run_dir, messages),
# dataset folder (DATA_DIR), global batch and device split; the variant's overrides come after the
# base's and before the user's (USER_ARGS starts with them), so the user's still win, and the
# run_dir id names the user's overrides only. A variant may itself be the base of another.
#
# Environment:
#   DATA_DIR   data sets live in $DATA_DIR/<dataset folder of the script> (default: ./data)
#   NUM_GPUS   devices per node (default: the recipe's); NUM_NODES: nodes (default: the recipe's)
#   RUN_DIR    where a pretraining run writes (default: runs/<dataset>/<recipe>-<id of the user's overrides>)
#   PYTHON     the interpreter (default: python)

ZOO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
# _ZOO_VARIANT_*: set by a variant for the script it runs (see run_variant); read here, not passed on.
RECIPE_SCRIPT=${_ZOO_VARIANT_SCRIPT:-$0}  # the script the user ran
RECIPE_SPLIT=${_ZOO_VARIANT_SPLIT:-}      # its "GLOBAL_BATCH GPUS NODES" when it is a variant
RECIPE_NARGS=${_ZOO_VARIANT_NARGS:-0}     # how many leading overrides are variants', not the user's
unset _ZOO_VARIANT_SCRIPT _ZOO_VARIANT_SPLIT _ZOO_VARIANT_NARGS
RECIPE_DATASET=$(basename "$(dirname "$RECIPE_SCRIPT")")  # cifar10, imagenet-100, tiny-imagenet, ...
RECIPE_NAME=$(basename "$RECIPE_SCRIPT" .sh)

die() {
  echo "error: $*" >&2
  exit 2
}

# The value of KEY among KEY=VALUE arguments (the last one, as Hydra takes it), or nothing.
arg_value() {
  local key=$1 value="" arg
  shift
  for arg in "$@"; do
    if [[ $arg == "$key="* ]]; then value=${arg#*=}; fi
  done
  printf '%s' "$value"
}

# Splits the arguments into FLAGS (options, with the value of those that take one) and USER_ARGS.
split_flags() {
  FLAGS=() USER_ARGS=()
  while (($#)); do
    case $1 in
      --cfg | -c | --info | -i | --package | -p | --config-name | -cn | --config-path | -cp | --config-dir | -cd)
        FLAGS+=("$1")
        if [[ $# -gt 1 && $2 != *=* ]]; then FLAGS+=("$2") && shift; fi ;;
      -*) FLAGS+=("$1") ;;
      *) USER_ARGS+=("$1") ;;
    esac
    shift
  done
}

# True when the flags only ask for a printout (--cfg job, --help, ...): no data is read then.
prints_only() {
  local flag
  for flag in "${FLAGS[@]}"; do
    case $flag in --cfg | --cfg=* | -c | --help | -h | --hydra-help | --info | --info=* | -i) return 0 ;; esac
  done
  return 1
}

# 8 hex digits naming the Hydra overrides among the arguments: the same command gives the same
# run_dir, so re-running it resumes, and every DDP / SLURM rank agrees on it without talking.
overrides_id() {
  local arg kept=()
  for arg in "$@"; do
    if [[ $arg == *=* && $arg != run_dir=* ]]; then kept+=("$arg"); fi
  done
  printf '%08x' "$(printf '%s\n' "${kept[@]}" | cksum | cut -d' ' -f1)"
}

check_data() {
  [[ -e $1 ]] || die "data not found at $1 (set DATA_DIR or pass data.root=PATH)"
}

# setup_pretrain GLOBAL_BATCH GPUS NODES "$@"
# Sets USER_ARGS (the user's overrides) and ZOO_ARGS: the user's flags; the per-device batch that
# keeps the recipe's global batch on NUM_GPUS x NUM_NODES devices (the lr follows the global batch,
# so it stays the recipe's); the devices; the run_dir; data.root from DATA_DIR unless the
# arguments give one. Then checks that the data is there. A variant's split wins over the arguments.
setup_pretrain() {
  local global_batch gpus nodes
  read -r global_batch gpus nodes <<<"${RECIPE_SPLIT:-$1 $2 $3}"
  gpus=${NUM_GPUS:-$gpus} nodes=${NUM_NODES:-$nodes}
  shift 3
  split_flags "$@"
  local devices=$((gpus * nodes))
  ((devices > 0 && global_batch % devices == 0)) ||
    die "the recipe's global batch $global_batch does not split over NUM_GPUS=$gpus x NUM_NODES=$nodes devices"
  ZOO_ARGS=(
    "${FLAGS[@]}" "data.batch_size=$((global_batch / devices))" "trainer.devices=$gpus" "trainer.num_nodes=$nodes"
    "run_dir=${RUN_DIR:-runs/$RECIPE_DATASET/$RECIPE_NAME-$(overrides_id "${USER_ARGS[@]:RECIPE_NARGS}")}"
  )
  local root
  root=$(arg_value data.root "${USER_ARGS[@]}")
  if [[ -z $root ]]; then
    root=${DATA_DIR:-data}/$RECIPE_DATASET
    ZOO_ARGS+=("data.root=$root")
  fi
  # torchvision data sets may be fetched into a missing root
  prints_only || [[ $(arg_value data.download "${USER_ARGS[@]}") == true ]] || check_data "$root"
}

# setup_linear --ckpt PATH "$@"
# Sets USER_ARGS (the overrides after --ckpt PATH) and ZOO_ARGS (--ckpt, the user's flags and the
# devices: NUM_GPUS, NUM_NODES, default 1 each). The data is the checkpoint's own unless
# data.root=PATH or DATA_DIR says otherwise; a root given either way must exist.
setup_linear() {
  local ckpt=()
  if [[ ${1:-} == --ckpt && -n ${2:-} ]]; then
    ckpt=(--ckpt "$2")
    shift 2
  fi
  split_flags "$@"
  ((${#ckpt[@]})) || prints_only || die "usage: bash $RECIPE_SCRIPT --ckpt PATH [overrides] (PATH: a checkpoint written by main_pretrain.py)"
  ZOO_ARGS=("${ckpt[@]}" "${FLAGS[@]}" "trainer.devices=${NUM_GPUS:-1}" "trainer.num_nodes=${NUM_NODES:-1}")
  local root
  root=$(arg_value data.root "${USER_ARGS[@]}")
  if [[ -z $root && -n ${DATA_DIR:-} ]]; then
    root=$DATA_DIR/$RECIPE_DATASET
    ZOO_ARGS+=("data.root=$root")
  fi
  if [[ -n $root ]] && ! prints_only; then check_data "$root"; fi
}

# run_variant BASE SPLIT [OVERRIDE...] -- "$@" (through pretrain_variant or linear_variant)
# Execs BASE (relative to this script's folder) with OVERRIDE... before the user's arguments; tells
# BASE's _common.sh, through the environment, the script the user ran, SPLIT ("GLOBAL_BATCH GPUS
# NODES", or nothing) and how many leading overrides are not the user's. When this script is itself
# run by a variant, the outer variant's script and split win. --ckpt PATH stays first (setup_linear).
run_variant() {
  local base=$1 split=$2 overrides=() ckpt=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do
    overrides+=("$1")
    shift
  done
  (($#)) || die "$0: ${FUNCNAME[1]} wants -- before the user's arguments"
  shift
  if [[ ${1:-} == --ckpt && -n ${2:-} ]]; then
    ckpt=("$1" "$2")
    shift 2
  fi
  export _ZOO_VARIANT_SCRIPT=$RECIPE_SCRIPT _ZOO_VARIANT_SPLIT=${RECIPE_SPLIT:-$split}
  export _ZOO_VARIANT_NARGS=$((RECIPE_NARGS + ${#overrides[@]}))
  exec bash "$(dirname "$0")/$base" "${ckpt[@]}" "${overrides[@]}" "$@"
}

# pretrain_variant BASE GLOBAL_BATCH GPUS NODES [OVERRIDE...] -- "$@"
pretrain_variant() {
  run_variant "$1" "$2 $3 $4" "${@:5}"
}

# linear_variant BASE [OVERRIDE...] -- "$@"
linear_variant() {
  run_variant "$1" "" "${@:2}"
}
