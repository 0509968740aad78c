#!/usr/bin/env bash
# Zero-CL (instance-wise) on CIFAR-10 under the W-MSE protocol: ResNet-18, 2 views, 1000 epochs (the CW-RGP code).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/zero_cl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/zero_cl "$@"
