#!/usr/bin/env bash
# I-VNE+ on ImageNet-100: ResNet-50, 2 x 224 + 4 x 96 crops, 800 epochs, batch 64 on 2 GPUs (the official example).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/ivne.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/ivne "$@"
