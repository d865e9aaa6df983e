"""DynConv for transformers; importing it registers every class with the Auto classes."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_dynconv import DynConvConfig
from .modeling_dynconv import (
    DynConvForConditionalGeneration,
    DynConvForMaskedLM,
    DynConvForSequenceClassification,
    DynConvForTokenClassification,
    DynConvModel,
    DynConvPreTrainedModel,
    DynConvSeq2SeqModel,
)

AutoConfig.register(DynConvConfig.model_type, DynConvConfig, exist_ok=True)
for auto_class, model_class in (
    (AutoModel, DynConvModel),
    (AutoModelForSequenceClassification, DynConvForSequenceClassification),
    (AutoModelForTokenClassification, DynConvForTokenClassification),
    (AutoModelForMaskedLM, DynConvForMaskedLM),
    (AutoModelForSeq2SeqLM, DynConvForConditionalGeneration),
):
    auto_class.register(DynConvConfig, model_class, exist_ok=True)

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
