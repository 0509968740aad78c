"""Components a method composes: modules that own their state, schedule and timing (an EMA target, a feature
queue, parameters frozen early). No Lightning here: the training step (`zoo.train.step`) finds them in the
method's module tree and calls their hooks. Beside them, the backbone's optional whitening layer (`WhiteningLayer`:
its running statistics are its state; no hooks)."""

from zoo.nn.component import Component, StepState, components
from zoo.nn.ema import EMA
from zoo.nn.freeze import FreezeEarly
from zoo.nn.queue import FeatureQueue
from zoo.nn.whitening import WhiteningLayer

__all__ = ["EMA", "Component", "FeatureQueue", "FreezeEarly", "StepState", "WhiteningLayer", "components"]
