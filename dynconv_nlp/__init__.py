"""dynconv_nlp: dynamic convolutions with per-token kernels of adaptive width.

Importing the package registers the DynConv config and models with transformers' Auto classes.
"""

from .layers import DynamicConv1d, DynConvDecoderBlock, DynConvEncoderBlock
from .models import dynconv as _dynconv
from .models.dynconv import *  # noqa: F403  the config and models: _dynconv.__all__ (modeling_dynconv.AUTO_CLASSES)
from .ops import BACKENDS, dynamic_conv1d

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "DynConvDecoderBlock",
    "DynConvEncoderBlock",
    "DynamicConv1d",
    "__version__",
    "dynamic_conv1d",
    *_dynconv.__all__,
]
