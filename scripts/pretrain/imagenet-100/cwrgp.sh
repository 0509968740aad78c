#!/usr/bin/env bash
# CW-RGP 4 on ImageNet-100: ResNet-18, 4 views, 240 epochs (a proposal: no published recipe).
# Source: [P] recipes.md §4: CW-RGP base/ code with --dataset in100 under the W-MSE ImageNet-100 protocol.
# Protocol: LP-SMALL on Resize 256 / CenterCrop 224 features (scripts/linear/imagenet-100/cwrgp.sh).
# Target: none published (the INTL table's 76.96 has no known recipe).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=cwrgp data.name=imagenet100 data.num_workers=8 augment=wmse_in100 data.views.0.count=4 \
  backbone.name=resnet18 backbone.small_stem=false backbone.zero_init_residual=true \
  'method.proj_hidden=[1024]' method.proj_out=512 method.groups=4 method.w_size=64 method.w_iter=1 method.eps=0 \
  optimizer.name=adam optimizer.lr=2e-3 optimizer.scale_lr=false optimizer.weight_decay=1e-6 optimizer.probe_lr=2e-3 \
  scheduler.name=step scheduler.warmup_steps=500 'scheduler.milestones=[190,215]' scheduler.gamma=0.2 \
  trainer.max_epochs=240 trainer.precision=32-true trainer.sync_batchnorm=false trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
