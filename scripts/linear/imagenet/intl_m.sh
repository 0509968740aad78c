#!/usr/bin/env bash
# LP-INTL for the multi-crop + EMA INTL checkpoints (scripts/pretrain/imagenet/intl_m_ep*.sh): frozen backbone, SGD lr 0.4, batch 256, 100 epochs, steps at 60 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/intl_m.yaml
# Usage: bash scripts/linear/imagenet/intl_m.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/intl_m "$@"
