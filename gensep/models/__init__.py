"""Flax NNX models: the UMSS source-filter parameter estimator (DESIGN §3.1)."""

from gensep.models.umss import (
    UMSS,
    UMSSConfig,
    exp_sigmoid,
    f0_features,
    masks,
    separate_with_model,
    umss_loss,
)

__all__ = [
    "UMSS",
    "UMSSConfig",
    "exp_sigmoid",
    "f0_features",
    "masks",
    "separate_with_model",
    "umss_loss",
]
