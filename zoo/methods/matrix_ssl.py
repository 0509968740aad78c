from dataclasses import dataclass

from zoo.errors import ZooError
from zoo.losses.spectral_family import matrix_ssl_loss
from zoo.methods.base import FIRST_STEP, largest_crops
from zoo.methods.mec import MECModel
from zoo.registry import register_method


@register_method("matrix_ssl")
class MatrixSSL(MECModel):
    """Matrix-SSL (Zhang, Tan, Yang, Huang and Yuan, ICML 2024, "Matrix Information Theory for Self-Supervised
    Learning"): MEC's architecture (an online backbone + projector + predictor, an EMA teacher of backbone +
    projector) trained on matrix cross-entropies MCE(P, Q) = tr(-P log Q) of the L2-normalised, centred global
    batch instead of MEC's coding length. For the teacher's projection t of one crop and the prediction z of
    the other (`zoo.losses.spectral_family.matrix_ssl_loss`)::

        U = -lambd tr log(C_tz + mu I)                    matrix uniformity (cross-covariance C_tz = t^T J z / N)
        A = -tr((C_t + mu I) log(C_z + mu I))              matrix alignment (the branches' covariances)
        L = 1/2 sum over the two (teacher crop, other crop) pairs of (U + gamma A)

    with log the order-4 Taylor series around I (`zoo.spectral.matrix_log_series`, float32 without TF32 also
    under AMP). Official code: yifanzhang-pro/Matrix-SSL main_pretrain.py (``mce_loss_func``, ``matrix_log``,
    ``train``), mec/builder.py (MEC's model, unchanged).

    Defaults: the official argument defaults (main_pretrain.py; pretrain.sh passes none of the loss's):
    mce_lambd 0.5, mce_mu 0.5, gamma 1.0, mce_order 4; builder.py's projector 2048 -> 2048 -> 2048 without hidden
    biases, BN after every layer (the last without affine, its bias frozen), predictor 512 with BN; teacher
    momentum 0.996 -> 1 on a cosine over every step, moved after each optimiser step; SGD lr 0.5 x batch/256,
    momentum 0.9, weight decay 1e-5 on every parameter (10 warm-up epochs from 0, cosine to 0: a recipe's
    scheduler). The README's 100-epoch command sets mce_mu = mce_lambd = gamma = 1 (the ImageNet recipe's
    values). The official step also computes MEC's coding length with its lambda warm-up, for its log only
    (``loss = mce_loss``); the zoo does not. Its hidden widths are the backbone's feature width (2048 on
    ResNet-50), and its ResNet zero-initialises each block's last BN (``backbone.zero_init_residual=true``, a
    run setting). Each crop goes through the online and the teacher branch alone (BatchNorm per crop), as in
    builder.py's forward."""

    @dataclass
    class Config(MECModel.Config):
        lambd: float = 0.5  # --mce_lambd: the uniformity term's weight (P = lambd I)
        mu: float = 0.5  # --mce_mu: the ridge mu I added to every covariance before the logarithm
        gamma: float = 1.0  # --gamma: the alignment term's weight
        # order: --mce_order, of the logarithm's Taylor series; momentum_base: --teacher-momentum (MEC's model's)

    def build_modules(self):
        if self.mcfg.order < 1:
            raise ZooError(f"matrix_ssl needs order >= 1, got {self.mcfg.order}; the official order is 4")
        super().build_modules()

    def compute_loss(self, crops, state=FIRST_STEP):
        features = self.encode(crops)
        predictions = [self.predictor(z) for z in self.project(features)]
        targets = [self.target(crop) for crop in crops]
        m = self.mcfg
        settings = {"lambd": m.lambd, "mu": m.mu, "gamma": m.gamma, "order": m.order, "return_parts": True}
        # train(): mce(p2, z1) + mce(p1, z2), each term of both pairs, times 0.5
        pairs = [matrix_ssl_loss(targets[1], predictions[0], **settings),
                 matrix_ssl_loss(targets[0], predictions[1], **settings)]
        total = (pairs[0][0] + pairs[1][0]) / 2
        parts = {name: (pairs[0][1][name] + pairs[1][1][name]) / 2 for name in pairs[0][1]}
        return (total, parts), largest_crops(features, crops)
