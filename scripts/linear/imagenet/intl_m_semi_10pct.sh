#!/usr/bin/env bash
# SS-INTL: semi-supervised finetuning on 10% of ImageNet's labels, for scripts/pretrain/imagenet/intl_m_ep*.sh checkpoints.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/intl_m_semi_10pct.yaml
# Usage: bash scripts/linear/imagenet/intl_m_semi_10pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/intl_m_semi_10pct "$@"
