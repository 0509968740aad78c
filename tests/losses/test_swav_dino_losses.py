"""SwAV's and DINO's losses (Sinkhorn codes, the swapped prediction, DINO's loss, centre and teacher temperature
schedule) against the official codes' numbers, and under two gloo processes (the methods: tests/methods/test_swav.py,
test_dino.py, test_swav_dino.py).

tests/fixtures/swav_dino_reference.json holds float64 inputs with what facebookresearch/swav's
distributed_sinkhorn, solo-learn's swav_loss_func and facebookresearch/dino's DINOLoss computed on them
(run outside the project; the file says how each was called): shapes, temperatures, epsilons, Sinkhorn
iterations, crop counts and centre momenta other than the tests' and the defaults.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_gloo_ranks
from reference_inputs import rel_err

from zoo.errors import ZooError
from zoo.losses import dino_center, dino_loss, sinkhorn_knopp, swav_loss
from zoo.methods.dino import DINO
from zoo.nn import FeatureQueue

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "swav_dino_reference.json").read_text())
WORLD_SIZE = 2


def f64(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


# ---- the losses against the official codes, float64 ---------------------------------------------
@pytest.mark.parametrize("case", REFERENCE["sinkhorn"], ids=lambda c: f"{len(c['scores'])}x{len(c['scores'][0])}")
def test_sinkhorn_codes_equal_the_official_distributed_sinkhorns(case):
    scores = f64(case["scores"])
    rows = scores if case["queue"] is None else torch.cat([scores, f64(case["queue"])])  # official: queue first
    codes = sinkhorn_knopp(rows, case["epsilon"], case["iters"])[: len(scores)]
    assert codes.dtype == torch.float64 and not codes.requires_grad
    assert rel_err(codes, f64(case["codes"])) < 1e-7
    assert torch.allclose(codes.sum(dim=1), torch.ones(len(codes), dtype=torch.float64))


@pytest.mark.parametrize("case", REFERENCE["swav"], ids=lambda c: f"{len(c['scores'])}crops")
def test_swav_loss_value_and_gradient_equal_solo_learns(case):
    scores = [f64(s, grad=True) for s in case["scores"]]
    codes = [sinkhorn_knopp(s.detach()) for s in scores[: len(case["codes"])]]  # solo-learn's defaults: 0.05, 3
    assert all(rel_err(mine, f64(theirs)) < 1e-7 for mine, theirs in zip(codes, case["codes"]))
    value = swav_loss(*scores, codes=codes, temperature=case["temperature"])
    value.backward()
    assert rel_err(value.detach(), f64(case["value"])) < 1e-7
    for given, expected in zip(scores, case["grads"]):
        assert rel_err(given.grad, f64(expected)) < 1e-7


@pytest.mark.parametrize("case", REFERENCE["dino"], ids=lambda c: f"{len(c['student'])}crops")
def test_dino_loss_gradient_and_centre_equal_the_official_dinoloss(case):
    student = [f64(s, grad=True) for s in case["student"]]
    teacher, center = [f64(t) for t in case["teacher"]], f64(case["center"])
    value = dino_loss(*student, teacher=teacher, center=center, teacher_temperature=case["teacher_temperature"],
                      student_temperature=case["student_temperature"])
    value.backward()
    assert rel_err(value.detach(), f64(case["value"])) < 1e-7
    for given, expected in zip(student, case["grads"]):
        assert rel_err(given.grad, f64(expected)) < 1e-7
    new_center = dino_center(*teacher, center=center, momentum=case["center_momentum"])
    assert new_center.shape == center.shape and rel_err(new_center, f64(case["new_center"])) < 1e-7


@pytest.mark.parametrize("case", REFERENCE["teacher_temperature_schedules"],
                         ids=lambda c: f"warmup{c['warmup_teacher_temperature_epochs']}")
def test_the_teacher_temperature_schedule_is_the_officials(case):
    config = DINO.Config(**{k: case[k] for k in ("warmup_teacher_temperature", "teacher_temperature",
                                                 "warmup_teacher_temperature_epochs")})
    holder = SimpleNamespace(mcfg=config, current_epoch=0)
    schedule = [DINO.teacher_temperature(holder, epoch) for epoch in range(len(case["schedule"]))]
    assert schedule == pytest.approx(case["schedule"], rel=1e-12)


def test_bad_loss_inputs_are_clear_errors():
    scores = [torch.randn(4, 6) for _ in range(2)]
    with pytest.raises(ZooError, match=r"swav_loss needs 1 to 2 codes of the first crops, each \(4, 6\)"):
        swav_loss(*scores, codes=[torch.ones(4, 5)])
    with pytest.raises(ZooError, match="epsilon > 0 and iters >= 1"):
        sinkhorn_knopp(scores[0], epsilon=0.05, iters=0)
    with pytest.raises(ZooError, match="temperatures > 0"):
        dino_loss(*scores, teacher=scores, center=torch.zeros(1, 6), teacher_temperature=0.0)


def test_the_losses_keep_float32_under_autocast():
    scores = [torch.randn(8, 6, dtype=torch.bfloat16) for _ in range(3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert sinkhorn_knopp(scores[0]).dtype == torch.float32
        assert swav_loss(*scores, codes=[torch.rand(8, 6, dtype=torch.bfloat16)]).dtype == torch.float32
        assert dino_loss(*scores, teacher=scores[:2], center=torch.zeros(1, 6)).dtype == torch.float32


# ---- two gloo processes, each with half the batch ------------------------------------------------
def _ddp_inputs():
    gen = torch.Generator().manual_seed(5)
    scores = [F.normalize(torch.randn(12, 4, generator=gen, dtype=torch.float64), dim=1) @
              F.normalize(torch.randn(9, 4, generator=gen, dtype=torch.float64), dim=1).T for _ in range(3)]
    queue = torch.randn(7, 9, generator=gen, dtype=torch.float64)  # an odd count: unequal shares per rank
    student = [torch.randn(12, 9, generator=gen, dtype=torch.float64) for _ in range(3)]
    teacher = [torch.randn(12, 9, generator=gen, dtype=torch.float64) for _ in range(2)]
    return scores, queue, student, teacher, torch.randn(1, 9, generator=gen, dtype=torch.float64)


def _ddp_losses(scores, queue_rows, student, teacher, center):
    """(Sinkhorn codes of scores[0] with the queue rows, SwAV loss, DINO loss, DINO's next centre)."""
    codes = [sinkhorn_knopp(torch.cat([s, queue_rows]), 0.1, 4)[: len(s)] for s in scores[:2]]
    return (codes[0], swav_loss(*scores, codes=codes, temperature=0.2),
            dino_loss(*student, teacher=teacher, center=center, teacher_temperature=0.05, student_temperature=0.2),
            dino_center(*teacher, center=center, momentum=0.8))


def _single_process():
    scores, queue, student, teacher, center = _ddp_inputs()
    scores, student = [s.requires_grad_() for s in scores], [s.requires_grad_() for s in student]
    codes, swav, dino, new_center = _ddp_losses(scores, queue, student, teacher, center)
    (swav + dino).backward()
    return codes, swav.detach(), dino.detach(), new_center, [s.grad for s in scores], [s.grad for s in student]


def _ranks_match_one_process(rank, expected):
    codes, swav, dino, new_center, score_grads, student_grads = expected
    scores, queue, student, teacher, center = _ddp_inputs()
    rows = slice(rank * 6, (rank + 1) * 6)
    local_scores = [s[rows].clone().requires_grad_() for s in scores]
    local_student = [s[rows].clone().requires_grad_() for s in student]
    holder = FeatureQueue(count=1, size=len(queue), dim=queue.shape[-1])
    holder.keys = queue[None]  # the queue's share of the rows: 4 and 3 of the 7
    local_codes, local_swav, local_dino, local_center = _ddp_losses(
        local_scores, holder.share()[0], local_student, [t[rows] for t in teacher], center)
    (local_swav + local_dino).backward()
    assert rel_err(local_codes, codes[rows]) < 1e-12, rank
    assert rel_err(local_swav.detach(), swav) < 1e-12 and rel_err(local_dino.detach(), dino) < 1e-12, rank
    assert rel_err(local_center, new_center) < 1e-12, rank
    for local, whole in zip(local_scores + local_student, score_grads + student_grads):
        assert rel_err(local.grad, WORLD_SIZE * whole[rows]) < 1e-10, rank


def test_two_gloo_ranks_reproduce_the_single_process_codes_losses_gradients_and_centre():
    run_on_gloo_ranks(_ranks_match_one_process, WORLD_SIZE, before=_single_process)


