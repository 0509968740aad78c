"""Components a method composes: modules that own their state, schedule and timing (an EMA target, a feature
queue, parameters frozen early). No Lightning here: the training step (`zoo.train.step`) finds them in the
method's module tree and calls their hooks."""

from zoo.nn.component import Component, StepState, components
from zoo.nn.ema import EMA
from zoo.nn.freeze import FreezeEarly
from zoo.nn.queue import FeatureQueue

__all__ = ["EMA", "Component", "FeatureQueue", "FreezeEarly", "StepState", "components"]
