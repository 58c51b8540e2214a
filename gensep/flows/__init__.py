"""Normalizing flows: Glow layers and the multi-scale Glow prior over spectrogram patches."""

from gensep.flows.glow import FlowConfig, Glow, flow_loss
from gensep.flows.layers import ActNorm, AffineCoupling, FlowStep, InvConv1x1, Split, Squeeze

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "FlowConfig",
    "FlowStep",
    "Glow",
    "InvConv1x1",
    "Split",
    "Squeeze",
    "flow_loss",
]
