#!/usr/bin/env bash
# LP-INTL for the 2-view INTL checkpoint (scripts/pretrain/imagenet/intl.sh): frozen backbone, SGD lr 0.2, batch 256, 100 epochs, steps at 60 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/intl.yaml
# Usage: bash scripts/linear/imagenet/intl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/intl "$@"
