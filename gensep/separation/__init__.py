"""Separation methods behind one signature and a registry that finds them by name.

`separate(mixture [channels, samples], sample_rate, method=NAME, **options)` returns
{source: [channels, samples]} at the input's rate, length and channel count. The methods
live one per module; `registry.METHODS` says which module and what each needs.
"""

from gensep.separation.registry import (
    METHODS,
    Method,
    check_mixture,
    check_references,
    get_method,
    list_methods,
    separate,
)

__all__ = [
    "METHODS",
    "Method",
    "check_mixture",
    "check_references",
    "get_method",
    "list_methods",
    "separate",
]
