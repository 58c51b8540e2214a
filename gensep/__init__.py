"""gensep: unsupervised and generative music source separation in JAX.

The package imports JAX lazily: `import gensep` stays cheap, and the heavy
sub-packages (`gensep.dsp`, `gensep.metrics`) load on first use.
"""

from gensep.errors import AudioError, ConfigError, GensepError

__version__ = "0.1.0"
__all__ = ["AudioError", "ConfigError", "GensepError", "__version__", "separate"]


def separate(mixture, sample_rate: int, method: str = "irm", **options):
    """Separate a mixture [channels, samples] with a registered method; returns
    {source: [channels, samples]}. See `gensep.separation.separate` for the options."""
    from gensep.separation import separate as _separate

    return _separate(mixture, sample_rate, method, **options)
