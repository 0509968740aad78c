#!/usr/bin/env bash
# MEC on ImageNet: ResNet-50, 2 views, 100 epochs, batch 1024 on 8 GPUs (the official pretrain.sh).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/mec.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/mec "$@"
