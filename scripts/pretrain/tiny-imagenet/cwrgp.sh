#!/usr/bin/env bash
# CW-RGP 4 on Tiny-ImageNet: ResNet-18, 4 views, 1000 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/base.sh + base/cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/tiny-imagenet/cwrgp.sh).
# Target: 50.24 / 35.99 top-1 / 5-nn (CW-RGP README).
# Data: an ImageFolder with train/<class>/ and val/<class>/ (the labelled val split re-arranged).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=cwrgp data.name=folder data.image_size=64 data.eval_resize_ratio=1.0 'data.mean=[0.480,0.448,0.398]' 'data.std=[0.277,0.269,0.282]' \
  augment=wmse_small data.views.0.count=4 \
  backbone.name=resnet18 backbone.small_stem=true backbone.small_stem_maxpool=true backbone.small_stem_padding=1 backbone.zero_init_residual=true \
  'method.proj_hidden=[2048]' method.proj_out=1024 method.groups=2 method.w_size=128 method.w_iter=1 method.eps=0 \
  optimizer.name=adam optimizer.lr=2e-3 optimizer.scale_lr=false optimizer.weight_decay=1e-6 optimizer.probe_lr=2e-3 \
  scheduler.name=step scheduler.warmup_steps=500 'scheduler.milestones=[950,975]' scheduler.gamma=0.2 \
  trainer.max_epochs=1000 trainer.precision=32-true trainer.sync_batchnorm=false trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
