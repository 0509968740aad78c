#!/usr/bin/env bash
# INTL on CIFAR-10: ResNet-18, 2 views, 1000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/intl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/intl "$@"
