#!/usr/bin/env bash
# SimDINO on ImageNet: ViT-S/16 (timm), 2 global + 8 local crops, 100 epochs, batch 512 on 8 GPUs (the official code's defaults).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/simdino.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/simdino "$@"
