"""Auxiliary regularisers (zoo/regularizers/): on any method the total is the method's loss plus weight x the term,
logged as its own part; LDReg's warm-up follows the step's epoch and a resumed run steps as an uninterrupted one;
a misspelt name, key or value fails when the config is composed, in one `error:` line; a third regulariser is one
registered class."""

import copy
import sys
from dataclasses import dataclass

import pytest
import torch
from default_run import compose_run
from hydra.core.config_store import ConfigStore

from zoo import registry
from zoo.build import build_method
from zoo.errors import ZooError
from zoo.losses.local_dimension import ldreg_loss
from zoo.losses.spanning_tree import t_reg_loss
from zoo.nn import StepState
from zoo.registry import create_method, register_regularizer
from zoo.regularizers import Regularizer, RegularizerConfig
from zoo.train.harness import Pretrainer
from zoo.train.step import train_step

TINY = {"crop_sizes": (16, 16), "global_batch_size": 8, "backbone": {"name": "test_resnet", "small_stem": False}}
SMALL = {"simclr": {"proj_hidden": [32], "proj_out": 16}, "vicreg": {"proj_hidden": [32], "proj_out": 16},
         "byol": {"proj_hidden": [32], "proj_out": 16, "pred_hidden": 24}}
LDREG = {"name": "ldreg", "weight": 0.3, "k": 4, "warmup_epochs": 0}
T_REGS = {"name": "t_regs", "weight": 0.5, "gamma": 0.3, "lambd": 0.01}
AFTER_WARMUP = StepState(step=0, total_steps=10, epoch=0)


def build(method, regularizer=None):
    torch.manual_seed(0)
    return create_method(method, {**SMALL[method], "regularizer": regularizer}, **TINY).double()


def crops(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 3, 16, 16, generator=gen, dtype=torch.float64) for _ in range(2)]


def term_of(model, out, batch):
    """The regulariser's term written out from the step's own tensors with the pure loss functions."""
    config = model.regularizer.rcfg  # the typed config, defaults filled in
    if config.name == "t_regs":
        return sum(t_reg_loss(z, config.gamma, config.lambd) for z in model.project(out.features))
    views = model.project(out.features) if config.representation == "embeddings" else out.features
    references = [model.target.backbone(crop) for crop in batch] if config.reduction == "per_view" else []
    return ldreg_loss(*views, k=config.k, reduction=config.reduction, references=tuple(references))


def gradients(model):
    return [torch.zeros_like(p) if p.grad is None else p.grad for p in model.parameters()]


CASES = [("simclr", LDREG), ("vicreg", LDREG), ("simclr", {**LDREG, "representation": "embeddings"}),
         ("byol", {**LDREG, "reduction": "per_view"}), ("simclr", T_REGS), ("byol", T_REGS)]


@pytest.mark.parametrize("method, regularizer", CASES, ids=[f"{m}-{r['name']}-{r.get('representation', '')}{r.get('reduction', '')}"
                                                            for m, r in CASES])
def test_a_regulariser_adds_weight_times_its_term_to_any_method(method, regularizer):
    """Value and parameter gradients: the method's alone plus weight x the term (the pure function of the same step's
    features, projections or EMA target features); the term is its own part, the method's parts stay as they were."""
    batch = crops()
    plain, model, alone = build(method), build(method, regularizer), build(method, regularizer)
    expected = plain.forward_loss(batch, AFTER_WARMUP)
    out = model.forward_loss(batch, AFTER_WARMUP)
    term = term_of(alone, alone.forward_loss(batch, AFTER_WARMUP), batch)
    weight = regularizer["weight"]
    assert out.total.item() == pytest.approx(expected.total.item() + weight * term.item(), abs=1e-12)
    assert out.parts[regularizer["name"]].item() == pytest.approx(weight * term.item(), abs=1e-12)
    method_parts = {key: value for key, value in out.parts.items() if key != regularizer["name"]}
    assert method_parts.keys() == (expected.parts.keys() or {method})
    assert all(value.item() == pytest.approx((expected.parts or {method: expected.total})[key].item(), abs=1e-12)
               for key, value in method_parts.items())
    expected.total.backward()
    out.total.backward()
    term.backward()
    for got, base, extra in zip(gradients(model), gradients(plain), gradients(alone), strict=True):
        # one backward of the sum against two: float64 rounding, amplified through LID's m / (w - m) up to 1e-9
        assert torch.allclose(got, base + weight * extra, rtol=0, atol=1e-8)


def test_ldreg_waits_for_its_warmup_and_a_resumed_run_steps_as_an_uninterrupted_one():
    """The criterion's warm-up: no term before epoch `warmup_epochs` (logged as 0), the term from it on. The term keeps
    no state beyond its config (in the method's, so in the checkpoint's hyper-parameters) and the step's epoch: a run
    rebuilt from its harness's hyper-parameters and weights after two steps takes the same third step."""
    regularizer = {**LDREG, "warmup_epochs": 1}
    batches = [crops(seed) for seed in range(3)]
    states = [StepState(step=s, total_steps=3, epoch=s, steps_per_epoch=1) for s in range(3)]

    def harness(model):
        return Pretrainer(model, num_classes=10, optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.0}).double()

    def step(model, index):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        return train_step(model, (batches[index], None), optimizer, None, states[index])

    uninterrupted = build("simclr", regularizer)
    first = step(uninterrupted, 0)
    assert first.parts["ldreg"].item() == 0 and first.loss.item() == first.parts["simclr"].item()
    step(uninterrupted, 1)
    interrupted = harness(copy.deepcopy(uninterrupted))
    resumed = Pretrainer(**interrupted.hparams).double()
    resumed.load_state_dict(interrupted.state_dict())
    assert resumed.method.regularizer.rcfg == uninterrupted.regularizer.rcfg
    third, again = step(uninterrupted, 2), step(resumed.method, 2)
    assert third.parts["ldreg"].item() != 0
    assert third.loss.item() == pytest.approx(again.loss.item(), abs=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted.state_dict().values(), resumed.method.state_dict().values()))


@pytest.mark.parametrize("overrides, expected", [
    (["regularizer=ldrg"], "In 'pretrain': Could not find 'regularizer/ldrg'"),
    (["regularizer=ldreg", "method.regularizer.reduction=joit"],
     "method.regularizer.reduction=joit is not one of: joint, per_view"),
    (["regularizer=t_regs", "method.regularizer.gama=0.1"], "Could not override 'method.regularizer.gama'"),
])
def test_a_misspelt_regulariser_fails_when_the_config_is_composed(overrides, expected, tmp_path, monkeypatch, capsys):
    """main_pretrain in this process, its command-line check skipped: composing the config fails in one line."""
    import zoo.pretrain

    monkeypatch.setattr(zoo.pretrain, "check_pretrain_arguments", lambda argv: None)
    monkeypatch.setattr(sys, "argv", ["main_pretrain.py", "method=simclr", *overrides, f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as stopped:
        zoo.pretrain.main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2 and len(errors) == 1 and errors[0].startswith("error: ") and expected in errors[0], errors
    assert not (tmp_path / "run").exists()


def test_the_command_line_check_knows_the_regularisers_before_torch():
    from zoo.arguments import check_pretrain_arguments

    check_pretrain_arguments(["regularizer=ldreg"])
    with pytest.raises(ZooError, match=r"^unknown regularizer 'ldrg' \(registered: ldreg, t_regs\)$"):
        check_pretrain_arguments(["method=simclr", "regularizer=ldrg"])


def test_a_third_regulariser_is_one_registered_class(monkeypatch):
    """Registered here for this test only: `regularizer=<name>` composes its typed config onto any method, and the
    method's loss gains its weighted term."""

    class Throwaway(Regularizer):
        @dataclass
        class Config(RegularizerConfig):
            weight: float = 2.0
            power: int = 2

        def term(self, inputs, state):
            return sum(f.pow(self.rcfg.power).mean() for f in inputs.features)

    monkeypatch.setattr(registry, "_REGULARIZERS", dict(registry._REGULARIZERS))  # the registration ends with the test
    try:
        register_regularizer("throwaway")(Throwaway)
        cfg = compose_run(["method=vicreg", "regularizer=throwaway", "method.regularizer.power=4", "data.batch_size=8",
                           "method.proj_hidden=[32]", "method.proj_out=16", "backbone.name=test_resnet",
                           "backbone.small_stem=false"])
        model = build_method(cfg, num_classes=10, world_size=1).method
        out = model.forward_loss([b.float() for b in crops()])
        assert out.parts["throwaway"].item() == pytest.approx(2.0 * sum(f.pow(4).mean() for f in out.features).item(), rel=1e-6)
    finally:
        ConfigStore.instance().repo["regularizer"].pop("throwaway.yaml", None)
