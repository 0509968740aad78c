#!/usr/bin/env bash
# Every row of the table zoo/configs/tables/intl/imagenet_linear.yaml: pretraining, its protocols, detection; finished
# steps skipped; the table printed at the end. --plan shows the commands and GPU-hours without running.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../_table.sh" intl/imagenet_linear "$@"
