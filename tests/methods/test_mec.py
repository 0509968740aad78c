"""MEC: the official architecture, the predictor optimised and not the teacher."""

from method_settings import TINY_8, narrow_config

from zoo.methods.mec import MEC
from zoo.registry import create_method
from zoo.train.harness import Pretrainer


def test_mec_is_the_official_architecture_and_optimises_the_predictor_not_the_teacher():
    model = create_method("mec", narrow_config("mec"), **TINY_8)
    layers = [type(layer).__name__ for layer in model.projector]
    assert layers == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert model.projector[0].bias is None and not model.projector[-1].affine
    assert not model.projector[-2].bias.requires_grad  # followed by BN
    optimised = {id(p) for group in Pretrainer(model, num_classes=10).param_groups() for p in group["params"]}
    assert all(id(p) in optimised for p in model.predictor.parameters())
    assert not any(id(p) in optimised for p in model.target.projector.parameters())
    config = MEC.Config()
    assert (config.proj_hidden, config.proj_out, config.pred_hidden, config.eps, config.order) == ([2048, 2048], 2048, 512, 64.0, 4)
    assert (config.lambda_warmup_factor, config.lambda_warmup_epochs, config.momentum_base) == (8.0, 10.0, 0.996)
