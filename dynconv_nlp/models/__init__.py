"""transformers models built on the dynamic convolution: :mod:`dynconv_nlp.models.dynconv`."""
