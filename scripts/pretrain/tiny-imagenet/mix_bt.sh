#!/usr/bin/env bash
# Mixed Barlow Twins on Tiny-ImageNet: ResNet-18, 2 views + 1 mixed, 2000 epochs, batch 256 (the official script).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/mix_bt.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/mix_bt "$@"
