#!/usr/bin/env bash
# SSOLE on ImageNet-100: ResNet-18, 4 views, 100 epochs, batch 128 on 4 GPUs (the official config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/ssole.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/ssole "$@"
