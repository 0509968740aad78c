#!/usr/bin/env bash
# CorInfoMax on ImageNet: ResNet-50, 2 views, 100 epochs, batch 1536 on 8 GPUs, mixed precision (the official command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/corinfomax.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/corinfomax "$@"
