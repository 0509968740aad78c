#!/usr/bin/env bash
# W-MSE 4 on CIFAR-100: ResNet-18, 4 views, 1000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar100/wmse.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar100/wmse "$@"
