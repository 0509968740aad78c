#!/usr/bin/env bash
# SwAV on CIFAR-10: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/swav.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/swav "$@"
