#!/usr/bin/env bash
# INTL on CIFAR-100: ResNet-18, 2 views, 1000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar100/intl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar100/intl "$@"
