"""dynconv_nlp: dynamic convolutions with per-token kernels of adaptive width."""

from .layers import DynamicConv1d, DynConvDecoderBlock, DynConvEncoderBlock
from .ops import BACKENDS, dynamic_conv1d

__version__ = "0.1.0"

__all__ = ["BACKENDS", "DynConvDecoderBlock", "DynConvEncoderBlock", "DynamicConv1d", "dynamic_conv1d", "__version__"]
