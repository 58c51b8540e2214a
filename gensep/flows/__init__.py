"""Normalizing flows: Glow layers and the multi-scale Glow prior over spectrogram patches,
its front end (`spectro`), the prior registry (`priors`) and prior training (`trainer`)."""

from gensep.flows.glow import FlowConfig, Glow, flow_loss
from gensep.flows.layers import ActNorm, AffineCoupling, FlowStep, InvConv1x1, Split, Squeeze
from gensep.flows.spectro import SpectroConfig

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "FlowConfig",
    "FlowStep",
    "Glow",
    "InvConv1x1",
    "SpectroConfig",
    "Split",
    "Squeeze",
    "flow_loss",
]
