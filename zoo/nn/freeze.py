"""Parameters held fixed for the first epochs or steps of training: SwAV's prototypes, DINO's last layer.

    self.freeze_early = FreezeEarly(self.prototypes.parameters, epochs=cfg.freeze_epochs, steps=cfg.freeze_steps)

Both official codes drop the gradients of these parameters after the backward pass while training is early
(facebookresearch/swav `freeze_prototypes_niters`, facebookresearch/dino `cancel_gradients_last_layer`,
solo-learn's `freeze_prototypes_epochs` / `freeze_last_layer`): with no gradient the optimiser skips them, so
neither weight decay nor momentum moves them either. The decision reads the step state's epoch and step, which
a checkpoint keeps, so a resumed run freezes exactly as an uninterrupted one.
"""

from collections.abc import Callable, Iterable

from torch import nn

from zoo.nn.component import Component


class FreezeEarly(Component):
    """No update of the parameters `parameters()` gives during the first `epochs` epochs and the first `steps`
    optimiser steps (whichever lasts longer): their gradients are set to None before each optimiser step of
    that period. `parameters` is a getter such as a module's bound `parameters` method (a bound method, so that
    a copy of the method freezes the copy's parameters)."""

    gradients_start_late = True  # the frozen parameters' first gradient comes after the others'

    def __init__(self, parameters: Callable[[], Iterable[nn.Parameter]], epochs: int, steps: int = 0):
        super().__init__()
        self.parameters_of = parameters
        self.epochs, self.steps = int(epochs), int(steps)

    def frozen(self, epoch, step):
        """Whether the parameters are frozen at `epoch` / optimiser `step`: the official codes'
        `epoch < freeze_last_layer` and `iteration < niters`."""
        return epoch < self.epochs or step < self.steps

    def cancel_gradients(self, epoch, step):
        """Drop the gradients of the frozen parameters when training is early; True when it did."""
        if not self.frozen(epoch, step):
            return False
        for parameter in self.parameters_of():
            parameter.grad = None
        return True

    def before_optimizer_step(self, state):
        self.cancel_gradients(state.epoch, state.step)
