#!/usr/bin/env bash
# W-MSE 2 on CIFAR-100: ResNet-18, 2 views, 1000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar100/wmse_2views.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar100/wmse_2views "$@"
