"""SimSiam: the predictor keeps a fixed lr."""

from method_settings import build


def test_simsiam_predictor_keeps_a_fixed_lr():
    model = build("simsiam")
    groups = model.param_groups()
    predictor = [g for g in groups if g["params"][0] is next(model.method.predictor.parameters())]
    assert len(predictor) == 1 and predictor[0]["fixed_lr"]
    frozen_bias = model.method.projector[-2].bias
    assert not frozen_bias.requires_grad
    assert all(frozen_bias is not p for g in groups for p in g["params"])
