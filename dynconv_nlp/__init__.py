"""dynconv_nlp: dynamic convolutions with per-token kernels of adaptive width."""

from .ops import BACKENDS, dynamic_conv1d

__version__ = "0.1.0"

__all__ = ["BACKENDS", "dynamic_conv1d", "__version__"]
