"""Parameters held fixed for the first epochs or steps of training, a mixin: SwAV's prototypes, DINO's last layer.

    @register_method("swav")
    class SwAV(FrozenEarlyMixin, FeatureQueueMixin, BaseMethod):
        @dataclass
        class Config(FrozenEarlyMixin.Config, FeatureQueueMixin.Config, MethodConfig):  # + freeze_epochs, freeze_steps
            freeze_epochs: int = 2

        def frozen_early_parameters(self):
            return self.prototypes.parameters()

Both official codes drop the gradients of these parameters after the backward pass while training is early
(facebookresearch/swav `freeze_prototypes_niters`, facebookresearch/dino `cancel_gradients_last_layer`,
solo-learn's `freeze_prototypes_epochs` / `freeze_last_layer`): with no gradient the optimiser skips them, so
neither weight decay nor momentum moves them either. The decision reads Lightning's epoch and step counters,
which a checkpoint keeps, so a resumed run freezes exactly as an uninterrupted one.
"""

from dataclasses import dataclass

from zoo.methods.momentum import ConfiguredMixin


class FrozenEarlyMixin(ConfiguredMixin):
    """No update of `frozen_early_parameters()` during the first `freeze_epochs` epochs and the first
    `freeze_steps` optimiser steps (whichever lasts longer): their gradients are set to None before each
    optimiser step of that period. The method names the parameters."""

    gradients_start_late = True  # the frozen parameters' first gradient comes after the others' (BaseMethod's SGD)

    @dataclass
    class Config:
        """The mixin's fields; a method's Config lists this class first among its bases and may change the
        defaults (SwAV's CIFAR recipe freezes for 2 epochs, the official ImageNet one for 313 steps)."""

        freeze_epochs: int = 1
        freeze_steps: int = 0

    def frozen_early_parameters(self):
        """The parameters to hold fixed early in training (an iterable)."""
        raise NotImplementedError(f"{type(self).__name__} uses FrozenEarlyMixin: define frozen_early_parameters()")

    def frozen_early(self, epoch=None, step=None):
        """Whether the parameters are frozen at `epoch` / optimiser `step` (default: the current ones, both 0
        without a trainer): the official codes' `epoch < freeze_last_layer` and `iteration < niters`."""
        epoch = self.current_epoch if epoch is None else epoch
        step = self.global_step if step is None else step
        return epoch < self.mcfg.freeze_epochs or step < self.mcfg.freeze_steps

    def cancel_frozen_gradients(self):
        """Drop the gradients of the frozen parameters when training is early; True when it did."""
        if not self.frozen_early():
            return False
        for parameter in self.frozen_early_parameters():
            parameter.grad = None
        return True

    def on_before_optimizer_step(self, optimizer):
        # once per optimiser step, after every accumulated backward (and AMP's unscaling), before clipping
        self.cancel_frozen_gradients()
        return super().on_before_optimizer_step(optimizer)
