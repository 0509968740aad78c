#!/usr/bin/env bash
# SS-FB-BT: semi-supervised finetuning of Barlow Twins on 1% of ImageNet's labels.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/barlow_twins_semi_1pct.yaml
# Usage: bash scripts/linear/imagenet/barlow_twins_semi_1pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/barlow_twins_semi_1pct "$@"
