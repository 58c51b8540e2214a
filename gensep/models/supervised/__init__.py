"""Supervised mask estimators (DESIGN §3.3): one small Flax NNX module per architecture.

Every architecture maps normalised mixture features [B, T, F] (frames, STFT bins) to mask
logits [B, S, T, F] for S sources; the shared front end (magnitude STFT, compression,
per-bin scale and shift) and back end (softmax over sources, masking of the complex
mixture STFT) live in `gensep.models.masknet`. Constructors share one signature,
`Arch(n_bins, n_sources, config, *, rngs)`, reading the sizes they use from a
`MaskNetConfig`:

  blstm        Open-Unmix-like: linear bottleneck, bidirectional LSTM stack, skip, linear out
  unet         Spleeter-like: strided 5x5 conv encoder / transposed-conv decoder with skips
  cnn          a plain stack of dilated 3x3 convolutions at full resolution
  transformer  frame tokens, sinusoidal positions, pre-LayerNorm self-attention over time
  crnn         conv front over (time, frequency) with frequency striding + bidirectional GRU
"""

from gensep.models.supervised.blstm import BLSTM
from gensep.models.supervised.cnn import CNN
from gensep.models.supervised.crnn import CRNN
from gensep.models.supervised.transformer import Transformer
from gensep.models.supervised.unet import UNet

ARCHS = {"blstm": BLSTM, "unet": UNet, "cnn": CNN, "transformer": Transformer, "crnn": CRNN}

__all__ = ["ARCHS", "BLSTM", "CNN", "CRNN", "Transformer", "UNet"]
