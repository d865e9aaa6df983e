"""transformers models built on the dynamic convolution."""

from .dynconv import (
    DynConvConfig,
    DynConvForConditionalGeneration,
    DynConvForMaskedLM,
    DynConvForSequenceClassification,
    DynConvForTokenClassification,
    DynConvModel,
    DynConvPreTrainedModel,
)

__all__ = [
    "DynConvConfig",
    "DynConvForConditionalGeneration",
    "DynConvForMaskedLM",
    "DynConvForSequenceClassification",
    "DynConvForTokenClassification",
    "DynConvModel",
    "DynConvPreTrainedModel",
]
