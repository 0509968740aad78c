#!/usr/bin/env bash
# SimDINO on ImageNet: ViT-B/16 (timm), 2 global + 10 local crops, eps 0.05, 100 epochs, batch 512 on 8 GPUs (the README's command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/simdino_vit_base.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/simdino_vit_base "$@"
