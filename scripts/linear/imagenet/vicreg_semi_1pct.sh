#!/usr/bin/env bash
# SS-FB-VIC: semi-supervised finetuning of VICReg on 1% of ImageNet's labels.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/vicreg_semi_1pct.yaml
# Usage: bash scripts/linear/imagenet/vicreg_semi_1pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/vicreg_semi_1pct "$@"
