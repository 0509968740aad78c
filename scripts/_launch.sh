#!/usr/bin/env bash
# The one launcher behind scripts/<pretrain|linear>/<dataset>/<recipe>.sh: runs the recipe's Hydra
# config, zoo/configs/experiment/<dataset>/<recipe>.yaml (pretrain) or zoo/configs/linear/experiment/<dataset>/<recipe>.yaml,
# with the script's arguments after it (Hydra overrides and flags such as --cfg job).
# The recipe config reads DATA_DIR, NUM_GPUS, NUM_NODES and RUN_DIR from the environment.
set -euo pipefail
kind=$1 recipe=$2
shift 2
exec "${PYTHON:-python}" "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/main_$kind.py" "experiment=$recipe" "$@"
