#!/usr/bin/env bash
# CorInfoMax on ImageNet-100: ResNet-18, 2 views, 400 epochs, batch 1024 on 8 GPUs (the official command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/corinfomax.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/corinfomax "$@"
