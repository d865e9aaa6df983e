"""sdpa_window_<w>: a transformers Transformer whose tokens attend to ±w tokens only, against the same
model given that window as an explicit 4D mask (outputs and gradients), and run_glue's option."""

import copy

import pytest
import torch
from dynconv_testing import TEACHER_SIZES
from transformers import BertConfig, BertModel

from dynconv_nlp.window_attention import register_window_attention


def _band_mask(padding: torch.Tensor, width: int) -> torch.Tensor:
    """[B, T] padding mask -> [B, 1, T, T] bool: key j is visible to query i if it is a token and |i - j| <= width."""
    T = padding.shape[1]
    band = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).abs() <= width
    return (padding.bool()[:, None, None, :] & band)


@pytest.mark.parametrize("width", [0, 2, 50])
def test_window_attention_equals_the_model_with_the_band_as_its_mask(width):
    assert register_window_attention(f"sdpa_window_{width}")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, **TEACHER_SIZES)
    reference = BertModel(config, add_pooling_layer=False).eval()
    windowed = BertModel(copy.deepcopy(config), add_pooling_layer=False)
    windowed.load_state_dict(reference.state_dict())
    windowed.set_attn_implementation(f"sdpa_window_{width}")
    windowed.eval()
    ids = torch.randint(5, 50, (3, 9))
    padding = (torch.arange(9)[None] < torch.tensor([9, 6, 2])[:, None]).long()
    got = windowed(input_ids=ids, attention_mask=padding).last_hidden_state
    want = reference(input_ids=ids, attention_mask=_band_mask(padding, width)).last_hidden_state
    real = padding.bool()
    torch.testing.assert_close(got[real], want[real])
    weights = torch.randn_like(got)
    (got[real] * weights[real]).sum().backward()
    (want[real] * weights[real]).sum().backward()
    for (name, a), b in zip(windowed.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    if width == 0:  # each token sees itself only: the window changes the output
        full = reference(input_ids=ids, attention_mask=padding).last_hidden_state
        assert not torch.allclose(full[real], got[real], atol=1e-3)


def test_other_names_are_not_registered():
    assert not register_window_attention("sdpa")
    assert not register_window_attention("sdpa_window_")
    assert not register_window_attention("sdpa_window_-1")
