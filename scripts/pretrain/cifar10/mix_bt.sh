#!/usr/bin/env bash
# Mixed Barlow Twins on CIFAR-10: ResNet-18, 2 views + 1 mixed, 2000 epochs, batch 256 (the official script).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/mix_bt.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/mix_bt "$@"
