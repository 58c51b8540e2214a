"""gensep: unsupervised and generative music source separation in JAX.

The package imports JAX lazily: `import gensep` stays cheap, and the heavy
sub-packages (`gensep.dsp`, `gensep.metrics`) load on first use.
"""

from gensep.errors import AudioError, ConfigError, GensepError

__version__ = "0.1.0"
__all__ = ["AudioError", "ConfigError", "GensepError", "__version__"]
