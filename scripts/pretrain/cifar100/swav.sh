#!/usr/bin/env bash
# SwAV on CIFAR-100: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar100/swav.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar100/swav "$@"
