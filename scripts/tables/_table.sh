#!/usr/bin/env bash
# The one launcher behind scripts/tables/<paper>/<table>.sh: runs every row of the table
# zoo/configs/tables/<paper>/<table>.yaml (python -m zoo.tables), the script's arguments after it
# (--plan, --runs DIR, --coco DIR, seed=0,1,2, pretraining overrides, linear:KEY=VALUE,
# detection:--FLAG=VALUE, hydra/launcher=submitit_slurm hydra.launcher.partition=NAME).
set -euo pipefail
table=$1
shift
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m zoo.tables "$table" "$@"
