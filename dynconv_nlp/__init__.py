"""dynconv_nlp: dynamic convolutions with per-token kernels of adaptive width.

Importing the package registers the DynConv config and models with transformers' Auto classes.
"""

from .layers import DynamicConv1d, DynConvDecoderBlock, DynConvEncoderBlock
from .models import (
    DynConvConfig,
    DynConvForConditionalGeneration,
    DynConvForMaskedLM,
    DynConvForSequenceClassification,
    DynConvForTokenClassification,
    DynConvModel,
    DynConvPreTrainedModel,
    DynConvSeq2SeqModel,
)
from .ops import BACKENDS, dynamic_conv1d

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "DynConvConfig",
    "DynConvDecoderBlock",
    "DynConvEncoderBlock",
    "DynConvForConditionalGeneration",
    "DynConvForMaskedLM",
    "DynConvForSequenceClassification",
    "DynConvForTokenClassification",
    "DynConvModel",
    "DynConvPreTrainedModel",
    "DynConvSeq2SeqModel",
    "DynamicConv1d",
    "__version__",
    "dynamic_conv1d",
]
