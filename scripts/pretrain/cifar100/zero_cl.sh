#!/usr/bin/env bash
# Zero-CL (instance-wise) on CIFAR-100 under the W-MSE protocol: ResNet-18, 2 views, 1000 epochs (the CW-RGP code).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar100/zero_cl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar100/zero_cl "$@"
