#!/usr/bin/env bash
# LP-LEJEPA for LeJEPA ViT-S/16 on ImageNet-100: frozen backbone, Adam lr 1e-3, weight decay 1e-6, cosine, batch 256, 100 epochs.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/lejepa_vit_small.yaml
# Usage: bash scripts/linear/imagenet-100/lejepa_vit_small.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/lejepa_vit_small "$@"
