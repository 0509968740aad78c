#!/usr/bin/env bash
# W-MSE 4 on ImageNet-100: ResNet-18, 4 views, 240 epochs (the official recipe).
# Source: htdt/self-supervised README 'ImageNet-100' commands (its --dataset imagenet is IN-100) (recipes.md §4).
# Protocol: LP-SMALL on Resize 256 / CenterCrop 224 features (scripts/linear/imagenet-100/wmse.sh).
# Target: none in the reference tables (solo-learn's 69.06 is another recipe).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=wmse data.name=imagenet100 data.num_workers=8 augment=wmse_in100 data.views.0.count=4 \
  backbone.name=resnet18 backbone.small_stem=false backbone.zero_init_residual=false \
  'method.proj_hidden=[1024]' method.proj_out=128 method.w_size=256 method.w_iter=1 method.eps=0 \
  optimizer.name=adam optimizer.lr=2e-3 optimizer.scale_lr=false optimizer.weight_decay=1e-6 optimizer.probe_lr=2e-3 \
  scheduler.name=step scheduler.warmup_steps=500 'scheduler.milestones=[190,215]' scheduler.gamma=0.2 \
  trainer.max_epochs=240 trainer.precision=32-true trainer.sync_batchnorm=false trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
