"""Text-to-text pipelines for DynConv encoder-decoders: ``"translation"`` and ``"text2text-generation"``.

transformers 5 removed both tasks from its built-in pipelines. A saved
``DynConvForConditionalGeneration`` lists this class under ``custom_pipelines`` in its config and
carries this file, so ``pipeline("translation", model=path, trust_remote_code=True)`` works again,
with or without ``dynconv_nlp`` installed.
"""

from transformers import Pipeline


class DynConvText2TextPipeline(Pipeline):
    """Source texts -> ``generate()`` -> decoded texts, as transformers 4's Text2TextGenerationPipeline.

    Returns, per input, one dict per returned sequence (``num_return_sequences``) with the key
    ``"translation_text"`` for the ``"translation"`` task and ``"generated_text"`` otherwise.
    Generation settings (``max_new_tokens``, ``num_beams``, ``do_sample``, ...) go to ``generate()``.
    """

    _pipeline_calls_generate = True
    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, truncation=None, max_length=None, skip_special_tokens=True, **generate_kwargs):
        preprocess_params = {}
        if truncation is not None:
            preprocess_params["truncation"] = truncation
        if max_length is not None:
            preprocess_params["max_length"] = max_length
        return preprocess_params, generate_kwargs, {"skip_special_tokens": skip_special_tokens}

    def preprocess(self, text: str, truncation: bool = True, max_length: int | None = None):
        if not isinstance(text, str):
            raise ValueError(f"{self.task} takes a text or a list of texts, got {type(text).__name__}")
        return self.tokenizer(text, truncation=truncation, max_length=max_length, return_tensors="pt")

    def _forward(self, model_inputs, **generate_kwargs):
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs)
        return {"output_ids": self.model.generate(**model_inputs, **generate_kwargs)}

    def postprocess(self, model_outputs, skip_special_tokens: bool = True):
        key = "translation_text" if self.task == "translation" else "generated_text"
        texts = self.tokenizer.batch_decode(model_outputs["output_ids"], skip_special_tokens=skip_special_tokens)
        return [{key: text.strip()} for text in texts]


# Written into the config of a saved encoder-decoder, so that transformers finds the pipeline class.
CUSTOM_PIPELINES = {
    task: {"impl": "pipeline_dynconv.DynConvText2TextPipeline", "pt": ["AutoModelForSeq2SeqLM"], "type": "text"}
    for task in ("translation", "text2text-generation")
}
