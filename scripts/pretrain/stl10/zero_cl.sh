#!/usr/bin/env bash
# Zero-CL (instance-wise) on STL-10 under the W-MSE protocol: ResNet-18, 2 views, 2000 epochs (the CW-RGP code).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/zero_cl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/zero_cl "$@"
