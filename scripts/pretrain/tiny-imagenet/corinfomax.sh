#!/usr/bin/env bash
# CorInfoMax on Tiny-ImageNet: ResNet-50, 2 views, 800 epochs, batch 1024 (the official command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/corinfomax.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/corinfomax "$@"
