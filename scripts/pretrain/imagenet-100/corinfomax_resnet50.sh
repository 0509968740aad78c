#!/usr/bin/env bash
# CorInfoMax on ImageNet-100: ResNet-50, 2 views, 200 epochs, batch 1024 on 8 GPUs (the official command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/corinfomax_resnet50.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/corinfomax_resnet50 "$@"
