#!/usr/bin/env bash
# W-MSE 4 on CIFAR-10: ResNet-18, 4 views, 1000 epochs (the official recipe).
# Source: htdt/self-supervised README commands + cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/cifar10/wmse.sh).
# Target: 91.99 / 89.87 top-1 / 5-nn (CW-RGP table copy).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=wmse data.name=cifar10 'data.mean=[0.4914,0.4822,0.4465]' 'data.std=[0.2023,0.1994,0.2010]' \
  augment=wmse_small data.views.0.count=4 \
  backbone.name=resnet18 backbone.small_stem=true backbone.small_stem_padding=1 backbone.zero_init_residual=false \
  'method.proj_hidden=[1024]' method.proj_out=64 method.w_size=128 method.w_iter=1 method.eps=0 \
  optimizer.name=adam optimizer.lr=3e-3 optimizer.scale_lr=false optimizer.weight_decay=1e-6 optimizer.probe_lr=3e-3 \
  scheduler.name=step scheduler.warmup_steps=500 'scheduler.milestones=[950,975]' scheduler.gamma=0.2 \
  trainer.max_epochs=1000 trainer.precision=32-true trainer.sync_batchnorm=false trainer.check_val_every_n_epoch=20 \
  "${USER_ARGS[@]}"
