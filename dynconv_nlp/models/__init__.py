"""transformers models built on the dynamic convolution."""

from .dynconv import (
    DynConvConfig,
    DynConvForConditionalGeneration,
    DynConvForMaskedLM,
    DynConvForSequenceClassification,
    DynConvForTokenClassification,
    DynConvModel,
    DynConvPreTrainedModel,
    DynConvSeq2SeqModel,
)

__all__ = [
    "DynConvConfig",
    "DynConvForConditionalGeneration",
    "DynConvForMaskedLM",
    "DynConvForSequenceClassification",
    "DynConvForTokenClassification",
    "DynConvModel",
    "DynConvPreTrainedModel",
    "DynConvSeq2SeqModel",
]
