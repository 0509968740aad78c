"""The optimisers pretraining builds (`make_optimizer`), and the LARS variants torch and timm lack.

Three LARS variants, each the formula of the code a recipe follows (optimizer.name):
  lars         solo-learn's solo/utils/lars.py, which is timm's `Lars`: trust ratio eta ||w|| / (||g|| + wd ||w|| + eps),
               optionally clipped to the lr (lars_clip, LARC-style); apex LARC (the official SwAV) computes the same.
  lars_fb      facebookresearch/barlowtwins main.py and facebookresearch/vicreg main_vicreg.py, copied by ThomasYerxa/mmcr
               (mmcr/imagenet/misc.py), and the official BYOL's optax chain (byol/utils/optimizers.py): the weight decay
               joins the gradient first, then eta ||w|| / ||g + wd w||, never clipped; lr applied after the momentum.
  lars_google  google-research/simclr lars_optimizer.py (classic_momentum): lars_fb's trust ratio, with the lr inside
               the momentum buffer (v <- m v + lr trust u; w <- w - v), so a changing lr weighs each step by its own lr.
All keep the zoo's parameter groups: a group adapts when `always_adapt` (timm's key: the 1-D parameters under
exclude_bias_and_norm do not, as the sources' filters), with its own weight decay (0 for those).
"""

import torch

from zoo.config import check_optimizer
from zoo.names import UNCLIPPED_LARS as UNCLIPPED_LARS_NAMES


class FBLars(torch.optim.Optimizer):
    """LARS as facebookresearch/barlowtwins and facebookresearch/vicreg write it: per parameter, u = g + wd w, scaled
    by the trust ratio eta ||w|| / ||u|| (1 where either norm is 0) in groups with `always_adapt`, into a heavy-ball
    buffer mu <- momentum mu + u (created at the parameter's first gradient), and w <- w - lr mu.
    `GoogleLars` puts the lr inside the buffer instead."""

    classic_momentum = False  # google-research/simclr's flag of that name: mu <- momentum mu + lr u, and w <- w - mu

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0, trust_coeff=0.001, always_adapt=True):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "trust_coeff": trust_coeff,
                    "always_adapt": always_adapt}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                update = param.grad.add(param, alpha=group["weight_decay"])
                if group["always_adapt"]:
                    param_norm, update_norm = torch.linalg.vector_norm(param), torch.linalg.vector_norm(update)
                    one = torch.ones_like(param_norm)
                    trust = torch.where(param_norm > 0, torch.where(update_norm > 0, group["trust_coeff"] * param_norm / update_norm, one), one)
                    update = update.mul(trust)
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param)
                buffer = state["momentum_buffer"]
                if self.classic_momentum:
                    buffer.mul_(group["momentum"]).add_(update, alpha=group["lr"])
                    param.sub_(buffer)
                else:
                    buffer.mul_(group["momentum"]).add_(update)
                    param.add_(buffer, alpha=-group["lr"])
        return loss


class GoogleLars(FBLars):
    """LARS as google-research/simclr lars_optimizer.py writes it (classic_momentum, its default): FBLars' trust
    ratio, with the lr in the buffer, mu <- momentum mu + lr u and w <- w - mu (the same steps at a constant lr)."""

    classic_momentum = True


# The LARS variants without clipping, by optimizer.name.
UNCLIPPED_LARS = dict(zip(UNCLIPPED_LARS_NAMES, (FBLars, GoogleLars)))  # name -> class


def make_optimizer(opt, groups, lr, fused_sgd=False, fused=False):
    """The optimiser `opt` (an OptimizerConfig) names, over the zoo's parameter groups (`BaseMethod.param_groups`)."""
    check_optimizer(opt)
    if opt.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=opt.momentum, fused=fused_sgd)
    if opt.name == "lars":
        from timm.optim import Lars

        return Lars(groups, lr=lr, momentum=opt.momentum, trust_coeff=opt.lars_eta, trust_clip=opt.lars_clip)
    if opt.name in UNCLIPPED_LARS:
        return UNCLIPPED_LARS[opt.name](groups, lr=lr, momentum=opt.momentum, trust_coeff=opt.lars_eta)
    cls = torch.optim.Adam if opt.name == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=tuple(opt.betas), fused=fused)
