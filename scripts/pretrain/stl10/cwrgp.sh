#!/usr/bin/env bash
# CW-RGP 4 on STL-10: ResNet-18, 4 views, 2000 epochs (the official recipe).
# Source: winci-ai/CW-RGP scripts/base.sh + base/cfg.py (recipes.md §2, §3).
# Protocol: LP-SMALL (scripts/linear/stl10/cwrgp.sh).
# Target: 92.04 / 88.95 top-1 / 5-nn (CW-RGP README).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=cwrgp data.name=stl10 'data.mean=[0.43,0.42,0.39]' 'data.std=[0.27,0.26,0.27]' \
  augment=wmse_small data.views.0.count=4 \
  backbone.name=resnet18 backbone.small_stem=true backbone.small_stem_maxpool=true backbone.small_stem_padding=1 backbone.zero_init_residual=true \
  'method.proj_hidden=[1024]' method.proj_out=512 method.groups=4 method.w_size=64 method.w_iter=1 method.eps=0 \
  optimizer.name=adam optimizer.lr=2e-3 optimizer.scale_lr=false optimizer.weight_decay=1e-6 optimizer.probe_lr=2e-3 \
  scheduler.name=step scheduler.warmup_steps=500 'scheduler.milestones=[1950,1975]' scheduler.gamma=0.2 \
  trainer.max_epochs=2000 trainer.precision=32-true trainer.sync_batchnorm=false trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
