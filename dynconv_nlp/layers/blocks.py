"""Encoder and decoder blocks around DynamicConv1d, as fairseq's LightConv encoder/decoder layers.

Encoder: conv sub-layer -> FFN. Decoder: causal conv sub-layer -> cross-attention on the encoder
output (``scaled_dot_product_attention``) -> FFN. A hybrid encoder may put a standard self-attention
block (self-attention sub-layer -> FFN, BERT's layer) in chosen layers: a kernel generated from
token t alone cannot score how well token t matches token j, and q . k can. Each sub-layer is
``x + dropout(f(norm(x)))`` with ``normalize_before=True`` (pre-norm) or
``norm(x + dropout(f(x)))`` (post-norm, fairseq's default).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dynamic_conv import DynamicConv1d

ACTIVATION_FUNCTIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's and some BERTs' approximation
    "silu": F.silu,
}
# The feed-forward activations by name (DynConvConfig.hidden_act is checked against the same).
ACTIVATIONS = tuple(ACTIVATION_FUNCTIONS)


@dataclass
class DynConvBlockOutput:
    """What a block returns.

    Attributes:
        hidden_states: [B, T, C].
        left_extent, right_extent: [B, T, H] the conv's extents (None for an attention block).
        width_penalty: [B], each sequence's mean normalised conv width (0 for fixed width and attention).
        conv_state: [B, K - 1, C] decoder conv state when ``use_cache``, else None.
        conv_inputs: [B, T, C] the new tokens' conv inputs instead of ``conv_state``, when asked for.
        cross_key_value: (key, value), each [B, heads, S, C // heads], the projected encoder output,
            computed once per sequence and passed back in at every decoding step.
    """

    hidden_states: torch.Tensor
    left_extent: torch.Tensor | None
    right_extent: torch.Tensor | None
    width_penalty: torch.Tensor
    conv_state: torch.Tensor | None = None
    cross_key_value: tuple[torch.Tensor, torch.Tensor] | None = None
    conv_inputs: torch.Tensor | None = None


class FeedForward(nn.Module):
    """[B, T, C] -> [B, T, C]: fc1 -> activation -> dropout -> fc2."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str = "relu", activation_dropout: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.activation = ACTIVATION_FUNCTIONS[activation]
        self.activation_dropout = activation_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(self.activation(self.fc1(x)), self.activation_dropout, self.training)
        return self.fc2(x)


class CrossAttention(nn.Module):
    """Multi-head attention from decoder states [B, T, C] to encoder states [B, S, C]."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"num_attention_heads = {num_heads} must divide hidden_size = {hidden_size}")
        self.num_heads, self.dropout = num_heads, dropout
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)

    def key_value(self, encoder_hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states [B, S, C] -> key, value [B, heads, S, C // heads]."""
        return self._heads(self.k_proj(encoder_hidden_states)), self._heads(self.v_proj(encoder_hidden_states))

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value: tuple[torch.Tensor, torch.Tensor],
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            hidden_states: [B, T, C] decoder states (the queries).
            key_value: (key, value), each [B, heads, S, C // heads], from :meth:`key_value`.
            encoder_attention_mask: [B, S], 1 for encoder tokens and 0 for padding.

        Returns:
            [B, T, C].
        """
        B, T, C = hidden_states.shape
        mask = None
        if encoder_attention_mask is not None:
            mask = encoder_attention_mask.bool()[:, None, None, :]
        out = F.scaled_dot_product_attention(
            self._heads(self.q_proj(hidden_states)),
            *key_value,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(B, T, C))


class SelfAttention(CrossAttention):
    """Multi-head self-attention over the real tokens of [B, T, C] (keys and values from the same states)."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states [B, T, C], attention_mask [B, T] (1 = token, 0 = padding) -> [B, T, C]."""
        return super().forward(hidden_states, self.key_value(hidden_states), attention_mask)


class _SubLayer(nn.Module):
    """Residual wrapper with pre- or post-norm."""

    def __init__(self, hidden_size: int, dropout: float, normalize_before: bool, layer_norm_eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout, self.normalize_before = dropout, normalize_before

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) if self.normalize_before else x

    def post(self, residual: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        x = residual + F.dropout(out, self.dropout, self.training)
        return x if self.normalize_before else self.norm(x)


class DynConvEncoderBlock(nn.Module):
    """Bidirectional conv sub-layer then FFN. Extra keyword arguments go to :class:`DynamicConv1d`."""

    token_mixer = "conv"

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        kernel_size: int,
        intermediate_size: int,
        *,
        dropout: float = 0.1,
        activation: str = "relu",
        activation_dropout: float = 0.0,
        normalize_before: bool = False,
        layer_norm_eps: float = 1e-5,
        **conv_options,
    ):
        super().__init__()
        self.conv = DynamicConv1d(hidden_size, num_heads, kernel_size, causal=False, **conv_options)
        self.conv_sublayer = _SubLayer(hidden_size, dropout, normalize_before, layer_norm_eps)
        self.ffn = FeedForward(hidden_size, intermediate_size, activation, activation_dropout)
        self.ffn_sublayer = _SubLayer(hidden_size, dropout, normalize_before, layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> DynConvBlockOutput:
        """hidden_states [B, T, C], attention_mask [B, T] (1 = token, 0 = padding)."""
        x, conv = self.mix_tokens(hidden_states, attention_mask)
        x = self.ffn_sublayer.post(x, self.ffn(self.ffn_sublayer.pre(x)))
        return DynConvBlockOutput(x, conv.left_extent, conv.right_extent, conv.width_penalty)


    def mix_tokens(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """The conv sub-layer alone, the block's only mixing of tokens (a Transformer's attention
        sub-layer): [B, T, C] -> ([B, T, C], the conv's :class:`DynamicConvOutput`)."""
        conv = self.conv(self.conv_sublayer.pre(hidden_states), attention_mask)
        return self.conv_sublayer.post(hidden_states, conv.hidden_states), conv


class AttentionEncoderBlock(nn.Module):
    """Self-attention sub-layer then FFN (a Transformer encoder layer, BERT's when post-norm), for the
    layers of a hybrid encoder that keep attention. It has no widths: its output reports none and a
    zero width penalty."""

    token_mixer = "attention"

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        *,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation: str = "relu",
        activation_dropout: float = 0.0,
        normalize_before: bool = False,
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.attention = SelfAttention(hidden_size, num_heads, attention_dropout)
        self.attention_sublayer = _SubLayer(hidden_size, dropout, normalize_before, layer_norm_eps)
        self.ffn = FeedForward(hidden_size, intermediate_size, activation, activation_dropout)
        self.ffn_sublayer = _SubLayer(hidden_size, dropout, normalize_before, layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> DynConvBlockOutput:
        """hidden_states [B, T, C], attention_mask [B, T] (1 = token, 0 = padding)."""
        x = self.mix_tokens(hidden_states, attention_mask)
        x = self.ffn_sublayer.post(x, self.ffn(self.ffn_sublayer.pre(x)))
        return DynConvBlockOutput(x, None, None, hidden_states.new_zeros(hidden_states.shape[0]))

    def mix_tokens(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The self-attention sub-layer alone: [B, T, C] -> [B, T, C]."""
        attended = self.attention(self.attention_sublayer.pre(hidden_states), attention_mask)
        return self.attention_sublayer.post(hidden_states, attended)


class DynConvDecoderBlock(nn.Module):
    """Causal conv sub-layer, cross-attention, FFN. Extra keyword arguments go to :class:`DynamicConv1d`."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        kernel_size: int,
        intermediate_size: int,
        num_attention_heads: int,
        *,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation: str = "relu",
        activation_dropout: float = 0.0,
        normalize_before: bool = False,
        layer_norm_eps: float = 1e-5,
        **conv_options,
    ):
        super().__init__()
        self.conv = DynamicConv1d(hidden_size, num_heads, kernel_size, causal=True, **conv_options)
        self.conv_sublayer = _SubLayer(hidden_size, dropout, normalize_before, layer_norm_eps)
        self.cross_attention = CrossAttention(hidden_size, num_attention_heads, attention_dropout)
        self.cross_sublayer = _SubLayer(hidden_size, dropout, normalize_before, layer_norm_eps)
        self.ffn = FeedForward(hidden_size, intermediate_size, activation, activation_dropout)
        self.ffn_sublayer = _SubLayer(hidden_size, dropout, normalize_before, layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        conv_state: torch.Tensor | None = None,
        cross_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        use_cache: bool = False,
        return_conv_inputs: bool = False,
    ) -> DynConvBlockOutput:
        """
        Args:
            hidden_states: [B, T, C] decoder inputs (T new tokens when decoding incrementally).
            encoder_hidden_states: [B, S, C]; may be omitted when ``cross_key_value`` is given.
            encoder_attention_mask: [B, S], 1 for tokens and 0 for padding.
            attention_mask: [B, T] decoder padding mask.
            conv_state: [B, K - 1, C] from the previous step, or None.
            cross_key_value: the projected encoder output from a previous step, or None.
            use_cache: return ``conv_state`` and ``cross_key_value`` for the next step.
            return_conv_inputs: return the conv's new inputs instead of its next state (see
                :meth:`DynamicConv1d.forward`).
        """
        normed = self.conv_sublayer.pre(hidden_states)
        conv = self.conv(normed, attention_mask, conv_state, use_cache, return_conv_inputs)
        x = self.conv_sublayer.post(hidden_states, conv.hidden_states)
        if cross_key_value is None:
            if encoder_hidden_states is None:
                raise ValueError("the decoder block needs encoder_hidden_states or cross_key_value")
            cross_key_value = self.cross_attention.key_value(encoder_hidden_states)
        attended = self.cross_attention(self.cross_sublayer.pre(x), cross_key_value, encoder_attention_mask)
        x = self.cross_sublayer.post(x, attended)
        x = self.ffn_sublayer.post(x, self.ffn(self.ffn_sublayer.pre(x)))
        return DynConvBlockOutput(
            x,
            conv.left_extent,
            conv.right_extent,
            conv.width_penalty,
            conv_state=conv.conv_state,
            cross_key_value=cross_key_value if use_cache else None,
            conv_inputs=conv.conv_inputs,
        )
