"""Self-attention that sees only ±w tokens, for any transformers model that dispatches its attention
through ``AttentionInterface`` (BERT, RoBERTa, ELECTRA, ...):

    register_window_attention("sdpa_window_15")
    model = AutoModelForSequenceClassification.from_pretrained(name, attn_implementation="sdpa_window_15")
    python scripts/run_glue.py ... --model_name_or_path bert-base-uncased --attn_implementation sdpa_window_15

A diagnostic for converted models: a Transformer fine-tuned with its attention cut to the window of a
DynConv layer of K = 2w + 1 taps tells whether a task needs more than that window, or whether what a
convolution lacks is attention's content matching (q . k) within it.
"""

import re

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

WINDOW_ATTENTION = re.compile(r"sdpa_window_(\d+)")


def register_window_attention(name: str) -> bool:
    """Register ``name`` with transformers if it is ``sdpa_window_<w>`` (w >= 0); returns whether it is."""
    match = WINDOW_ATTENTION.fullmatch(name)
    if match is None:
        return False
    width = int(match.group(1))

    def window_attention(module, query, key, value, attention_mask, **kwargs):
        """SDPA whose mask [B, 1, T, S] (bool, float or None) also drops keys farther than ``width``."""
        T, S = query.shape[-2], key.shape[-2]
        offset = torch.arange(S, device=query.device)[None, :] - torch.arange(S - T, S, device=query.device)[:, None]
        band = offset.abs() <= width  # [T, S]
        if attention_mask is None:
            mask = band
        elif attention_mask.dtype == torch.bool:
            mask = attention_mask & band
        else:
            mask = attention_mask.masked_fill(~band, torch.finfo(attention_mask.dtype).min)
        return sdpa_attention_forward(module, query, key, value, mask, **kwargs)

    AttentionInterface.register(name, window_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(name, sdpa_mask)  # the padding mask, as SDPA gets it
    return True
