"""The whitening layer (backbone.whitening_layer): whitening of a backbone's pooled features as its last layer, with
running statistics for eval mode. `zoo.backbones` puts it in a timm backbone's classifier slot."""

import torch
from torch import nn

from zoo import spectral
from zoo.errors import ZooError


class WhiteningLayer(nn.Module):
    """Whitening of the D pooled features as the encoder's last layer (Kalapos & Gyires-Toth, "Whitening
    Consistently Improves Self-Supervised Learning", 2024; kaland313/SSL-Whitening models/iterative_normalization.py
    ``IterNormBackBoneWrapper``: huangleiBuaa/IterNorm's ``IterNorm(num_features, affine=False)`` after the backbone).

    Training mode, on a batch X (N x D), per group of D/groups consecutive features::

        mu = mean_n x_n,   Sigma = (X - mu)^T (X - mu) / N + eps I,   y_n = W(Sigma) (x_n - mu)

    with W(Sigma) IterNorm's Newton-Schulz approximation of Sigma^-1/2 (``kind="iternorm"``, `iters` steps; it never
    inverts, so N < D is fine) or exact ZCA, U diag(lambda^-1/2) U^T (``kind="zca"``: needs N > D/groups), and the
    running averages ``running <- momentum * batch + (1 - momentum) * running`` of mu and W(Sigma), without gradient.
    Eval mode: y_n = W_running (x_n - mu_running) (`zoo.spectral.apply_whitening`), a fixed affine map. The maths is
    `zoo.spectral.whiten` (float32 without TF32, also under autocast; under torch.distributed over the global
    batch, like SyncBatchNorm: every rank keeps the same running statistics). No affine parameters, as officially.
    """

    def __init__(self, dim, kind="iternorm", iters=5, eps=1e-5, momentum=0.1, groups=1):
        super().__init__()
        if kind not in ("iternorm", "zca"):
            raise ZooError(f"backbone.whitening_layer={kind} is not a whitening layer: use iternorm or zca (or none)")
        if groups < 1 or dim % groups:
            divisors = [g for g in range(1, dim + 1) if dim % g == 0][:6]
            raise ZooError(f"backbone.whitening_groups={groups} does not divide the backbone's {dim} features; use a "
                           f"divisor such as {divisors}")
        if not 0 < momentum <= 1:
            raise ZooError(f"backbone.whitening_momentum={momentum} must be in (0, 1]: the weight of each batch's statistics")
        self.dim, self.kind, self.iters, self.eps, self.momentum, self.groups = dim, kind, iters, eps, momentum, groups
        size = dim // groups
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_matrix", torch.eye(size).expand(groups, size, size).clone())

    def forward(self, x):
        if not self.training:
            return spectral.apply_whitening(x, self.running_mean, self.running_matrix)
        white, mean, matrix = spectral.whiten(x, self.kind, "batch", iters=self.iters, ridge=self.eps, ddof=0,
                                              groups=self.groups, shuffle_groups=False, return_statistics=True)
        with torch.no_grad():
            self.running_mean.lerp_(mean[0].to(self.running_mean.dtype), self.momentum)
            self.running_matrix.lerp_(matrix[0].to(self.running_matrix.dtype), self.momentum)
        if spectral.is_distributed():  # whiten returns the global batch: this rank's rows
            rank = torch.distributed.get_rank()
            return white[0, rank * len(x) : (rank + 1) * len(x)]
        return white[0]

    def as_linear(self):
        """The eval-mode map as an `nn.Linear(D, D)` (weight W_running^T block-diagonal, bias -mu_running W_running):
        what an export of the backbone carries, loadable without the zoo."""
        blocks = torch.block_diag(*self.running_matrix.detach().double())
        linear = nn.Linear(self.dim, self.dim)
        with torch.no_grad():
            linear.weight.copy_(blocks.T)
            linear.bias.copy_(-(self.running_mean.double() @ blocks))
        return linear

    def extra_repr(self):
        return f"{self.dim}, kind={self.kind}, iters={self.iters}, eps={self.eps}, momentum={self.momentum}, groups={self.groups}"
