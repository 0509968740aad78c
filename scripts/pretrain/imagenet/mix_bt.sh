#!/usr/bin/env bash
# Mixed Barlow Twins on ImageNet: ResNet-50, 2 views + 1 mixed, 300 epochs, batch 1024 on 8 GPUs (the official script).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/mix_bt.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/mix_bt "$@"
