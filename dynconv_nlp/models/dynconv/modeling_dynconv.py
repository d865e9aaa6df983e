"""PyTorch DynConv models: stacks of dynamic convolutions with per-token kernels of adaptive width.

The encoder is fairseq's LightConv/DynamicConv encoder built from ``DynConvEncoderBlock``: token
embeddings (scaled) plus positions, then blocks of (GLU) projection -> DynamicConv1d -> FFN. Every
convolution learns, per token and head, how far it looks left and right; the mean normalised
width of the conv layers is the ``width_penalty`` that the heads add to their loss, times
``config.width_penalty_coef``. ``config.attention_layers`` makes a hybrid: those layers are
standard self-attention blocks (``AttentionEncoderBlock``).

The encoder-decoder follows BART/Marian's layout: ``DynConvSeq2SeqModel`` holds the ``shared`` token
embeddings, the ``encoder`` and a causal ``decoder`` with cross-attention (each with its
``embed_tokens``, tied to ``shared``); ``DynConvForConditionalGeneration`` puts the LM head on it.
The decoder's cache holds, per decoder layer, the last K - 1 conv inputs (a constant size, however
long the output) and the cross-attention keys/values, computed once from the encoder output.
"""

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache, LinearAttentionLayer
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)
from transformers.utils import ModelOutput, can_return_tuple, logging
from transformers.utils.deprecation import deprecate_kwarg

from ...layers.blocks import AttentionEncoderBlock, DynConvDecoderBlock, DynConvEncoderBlock
from ...layers.dynamic_conv import INITIAL_WIDTH_WEIGHT_STD, DynamicConv1d, WidthProjection
from ...layers.width_budget import WidthBudget
from .configuration_dynconv import DynConvConfig
from .pipeline_dynconv import CUSTOM_PIPELINES
from .remote_code import save_remote_code

logger = logging.get_logger(__name__)


# The cache. transformers 5 names it ``cache`` everywhere: the forward argument, the output field
# (``Seq2SeqLMOutput.cache``) and what GenerationMixin reads back from the outputs and passes in again
# (``model_kwargs["cache"]``); ``past_key_values`` (and Mamba's ``cache_params``) are deprecated aliases
# that ``ModelOutput`` and ``deprecate_kwarg`` still map to ``cache``. So the DynConv models keep the
# field ``cache``: ``outputs.past_key_values`` and ``forward(past_key_values=...)`` work as aliases, and
# a dataclass field named ``past_key_values`` could not even be built (ModelOutput renames that
# keyword to ``cache``). The cache itself is a transformers ``EncoderDecoderCache`` of a conv-state
# ``Cache`` (one ``DynConvStateCacheLayer`` per decoder layer) and a ``DynamicCache`` for the
# cross-attention keys/values: generate() reorders it for beam search through ``Cache.reorder_cache``
# like any other. The decoder builds it on the first cached step; generate() must not build its
# default key/value cache instead (``_supports_default_dynamic_cache``).


@dataclass
class DynConvModelOutput(BaseModelOutput):
    """
    Output of the encoder.

    Args:
        last_hidden_state: [B, T, C].
        hidden_states: with ``output_hidden_states``, the embeddings and every layer's output, each [B, T, C].
        attentions: always None (attention weights are not returned); kept for ``BaseModelOutput``'s layout.
        widths: with ``output_widths``, every conv layer's extents [B, T, H, 2] (left, right), in taps
            (``config.conv_layers`` says which layers: attention layers have none).
        layer_width_penalty: [B, L], each sequence's mean over tokens and heads of (l + r) / (K - 1),
            per layer, 0 for attention layers (what a width budget constrains; batch first, so that
            ``generate()`` expands it).
        width_penalty: [B], its mean over the conv layers.
    """

    widths: tuple[torch.FloatTensor, ...] | None = None
    layer_width_penalty: torch.FloatTensor | None = None
    width_penalty: torch.FloatTensor | None = None  # last: a tuple of this output ends with it


@dataclass
class DynConvDecoderOutput(BaseModelOutputWithPastAndCrossAttentions):
    """
    Output of the decoder.

    Args:
        last_hidden_state: [B, T, C] for the T decoder tokens given.
        cache: with ``use_cache``, the ``EncoderDecoderCache`` to pass to the next step (see the note
            on the cache above).
        hidden_states: with ``output_hidden_states``, the embeddings and every layer's output, each [B, T, C].
        attentions, cross_attentions: always None; kept for the layout of transformers' output.
        widths: with ``output_widths``, every layer's extents [B, T, H, 2] (the right extent is 0: causal).
        layer_width_penalty: [B, L], each sequence's mean width per decoder layer.
        width_penalty: [B], each sequence's mean over the decoder layers.
    """

    widths: tuple[torch.FloatTensor, ...] | None = None
    layer_width_penalty: torch.FloatTensor | None = None
    width_penalty: torch.FloatTensor | None = None


@dataclass
class DynConvHeadOutput(ModelOutput):
    """
    Output of the sequence classification, token classification and masked-LM heads.

    Args:
        loss: the task loss plus ``config.width_penalty_coef * width_penalty.mean()``, when ``labels`` are given.
        logits: [B, num_labels] (sequence classification), [B, T, num_labels] (token classification)
            or [B, T, vocab_size] (masked LM).
        hidden_states, widths, width_penalty: as in :class:`DynConvModelOutput` (width_penalty [B]).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    widths: tuple[torch.FloatTensor, ...] | None = None
    width_penalty: torch.FloatTensor | None = None


@dataclass
class DynConvSeq2SeqModelOutput(Seq2SeqModelOutput):
    """
    Output of :class:`DynConvSeq2SeqModel`.

    Args:
        last_hidden_state: [B, T_dec, C], the decoder's output.
        cache: with ``use_cache``, an ``EncoderDecoderCache``: per decoder layer a buffer of conv
            inputs whose last K - 1 rows are the state (``DynConvStateCacheLayer``, bounded in size)
            and the cross-attention keys/values.
        decoder_hidden_states, encoder_hidden_states: with ``output_hidden_states``.
        encoder_last_hidden_state: [B, T_enc, C].
        decoder_attentions, cross_attentions, encoder_attentions: always None.
        encoder_widths, decoder_widths: with ``output_widths``, every layer's extents [B, T, H, 2].
        width_penalty: [B], each sequence's mean over all encoder and decoder layers.
        layer_width_penalty: [B, L_enc + L_dec], per layer, the encoder's first (the decoder's alone
            when the encoder's outputs came without theirs).
    """

    encoder_widths: tuple[torch.FloatTensor, ...] | None = None
    decoder_widths: tuple[torch.FloatTensor, ...] | None = None
    width_penalty: torch.FloatTensor | None = None
    layer_width_penalty: torch.FloatTensor | None = None


@dataclass
class DynConvSeq2SeqLMOutput(Seq2SeqLMOutput):
    """
    Output of :class:`DynConvForConditionalGeneration`.

    Args:
        loss: cross-entropy on ``labels`` plus ``width_loss``.
        logits: [B, T_dec, vocab_size].
        cache, decoder_hidden_states, encoder_last_hidden_state, encoder_hidden_states, encoder_widths,
            decoder_widths, width_penalty: as in :class:`DynConvSeq2SeqModelOutput`.
        width_loss: the width terms of the loss, a scalar: ``config.width_penalty_coef * width_penalty.mean()``
            plus the width budget's constraint terms; None without either. A script with a loss of its
            own (label smoothing) adds it.
    """

    encoder_widths: tuple[torch.FloatTensor, ...] | None = None
    decoder_widths: tuple[torch.FloatTensor, ...] | None = None
    width_penalty: torch.FloatTensor | None = None
    width_loss: torch.FloatTensor | None = None


def sinusoidal_positions(position_ids: torch.Tensor, dim: int) -> torch.Tensor:
    """fairseq's sinusoidal embeddings: position_ids [B, T] -> [B, T, dim], sines then cosines."""
    half = dim // 2
    frequencies = torch.exp(
        torch.arange(half, device=position_ids.device, dtype=torch.float32) * -(math.log(10000.0) / max(half - 1, 1))
    )
    angles = position_ids.unsqueeze(-1).float() * frequencies
    embeddings = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(embeddings, (0, dim % 2))


def positions_from_mask(attention_mask: torch.Tensor | None, length: int, past_length: int, device) -> torch.Tensor:
    """Position of every token [B or 1, T], counting real tokens only, so left padding shifts nothing."""
    if attention_mask is None:
        return torch.arange(past_length, past_length + length, device=device).unsqueeze(0)
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)[:, -length:] + past_length


class DynConvEmbeddings(nn.Module):
    """Token embeddings [B, T, E] -> scaled, plus positions and token types, then (BERT) a layer norm,
    dropout and (ELECTRA, E != C) a projection: [B, T, C]."""

    def __init__(self, config: DynConvConfig, with_token_types: bool):
        super().__init__()
        self.position_embedding_type = config.position_embedding_type
        self.max_positions, self.position_offset = config.max_position_embeddings, config.position_offset
        self.clamp_positions, self.default_token_type = config.clamp_positions, config.default_token_type
        self.scale = math.sqrt(config.embedding_size) if config.scale_embedding else 1.0
        self.dropout = config.hidden_dropout_prob
        size = config.embedding_size
        if config.position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, size)
        if with_token_types and config.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, size)
        if config.embedding_layer_norm:
            self.layer_norm = nn.LayerNorm(size, eps=config.layer_norm_eps)
        if size != config.hidden_size:
            self.project = nn.Linear(size, config.hidden_size)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        position_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = inputs_embeds * self.scale
        if self.position_embedding_type == "sinusoidal":
            x = x + sinusoidal_positions(position_ids, x.shape[-1]).to(x.dtype)
        elif self.position_embedding_type == "learned":
            x = x + self.position_embeddings(self.table_rows(position_ids))
        if hasattr(self, "token_type_embeddings"):
            if token_type_ids is None and self.default_token_type is not None:  # BERT: all of segment 0
                token_type_ids = torch.full(x.shape[:2], self.default_token_type, dtype=torch.long, device=x.device)
            if token_type_ids is not None:
                x = x + self.token_type_embeddings(token_type_ids)
        if hasattr(self, "layer_norm"):
            x = self.layer_norm(x)
        x = F.dropout(x, self.dropout, self.training)
        return self.project(x) if hasattr(self, "project") else x

    def table_rows(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Rows of the learned table for positions [B, T]: offset, and clamped to the last with ``clamp_positions``."""
        rows = position_ids + self.position_offset
        if self.clamp_positions:
            return rows.clamp_max(self.max_positions - 1)
        if rows.numel() and int(rows.max()) >= self.max_positions:
            raise ValueError(
                f"position {int(position_ids.max())} is beyond the {self.max_positions - self.position_offset} "
                "positions of the learned table: truncate the inputs, set clamp_positions=True (the convolutions "
                "see relative positions) or use position_embedding_type='sinusoidal'"
            )
        return rows


def _conv_options(config: DynConvConfig) -> dict:
    """Keyword arguments of the encoder and decoder blocks, from the config."""
    return dict(
        dropout=config.hidden_dropout_prob,
        activation=config.hidden_act,
        activation_dropout=config.activation_dropout,
        normalize_before=config.normalize_before,
        layer_norm_eps=config.layer_norm_eps,
        kernel=config.kernel_type,
        width=config.width_mode,
        ramp=config.ramp,
        width_init=config.width_init,
        extent_activation=config.resolved_extent_activation,
        width_floor=config.resolved_width_floor,
        glu=config.glu,
        weight_dropout=config.weight_dropout,
        backend=config.conv_backend,
        trim=config.conv_trim,
    )


def _mean_over_conv_layers(penalties: list[torch.Tensor], conv_layers: list[int]) -> torch.Tensor:
    """Per-layer penalties L x [B] -> [B], their mean over the conv layers (0 when every layer attends)."""
    if not conv_layers:
        return torch.zeros_like(penalties[0])
    return torch.stack([penalties[i] for i in conv_layers]).mean(0)


def _stack_widths(block_output) -> torch.Tensor:
    """A block's extents as one tensor [B, T, H, 2]: left, right."""
    return torch.stack([block_output.left_extent, block_output.right_extent], dim=-1)


class DynConvEncoderLayer(DynConvEncoderBlock, GradientCheckpointingLayer):
    """An encoder block that ``model.gradient_checkpointing_enable()`` can checkpoint."""


class DynConvAttentionEncoderLayer(AttentionEncoderBlock, GradientCheckpointingLayer):
    """A self-attention encoder block (``config.attention_layers``) that gradient checkpointing can checkpoint."""


class DynConvDecoderLayer(DynConvDecoderBlock, GradientCheckpointingLayer):
    """A decoder block that ``model.gradient_checkpointing_enable()`` can checkpoint (without cache)."""


def _attention_layer(config: DynConvConfig) -> DynConvAttentionEncoderLayer:
    """A self-attention encoder layer of a hybrid encoder, with the config's sizes and dropouts."""
    return DynConvAttentionEncoderLayer(
        config.hidden_size,
        config.num_attention_heads,
        config.intermediate_size,
        dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        activation=config.hidden_act,
        activation_dropout=config.activation_dropout,
        normalize_before=config.normalize_before,
        layer_norm_eps=config.layer_norm_eps,
    )


class DynConvStateCacheLayer(LinearAttentionLayer):
    """transformers' conv-state cache layer for one decoder layer. ``conv_states[0]`` is a buffer of
    that layer's past conv inputs [B, S, C] (the layer's layout: positions before channels); its first
    ``length`` rows are filled, and the last K - 1 of those are the state (zeros before the first
    token). It also counts the tokens decoded so far, which gives the decoder its positions.

    A step writes its new rows into spare room at the end of the buffer; only when the room runs out
    do the last K - 1 rows move to the front. So a step copies about two rows per new token, not the
    K - 1 rows of a rolled state (at K = 127 that copy cost more than the step's convolution). While
    recording the past (assisted decoding) the buffer only grows, so that ``crop`` can take tokens back.
    """

    def __init__(self, state_size: int, **kwargs):
        """``state_size``: K - 1, the conv inputs a step needs from before its new tokens."""
        super().__init__(**kwargs)
        self.conv_kernel_size[0] = state_size
        self.length = 0
        self.seen_tokens = 0

    def get_state(self) -> torch.Tensor | None:
        """The last K - 1 conv inputs [B, K - 1, C] (a view of the buffer), or None before the first step."""
        if not self.has_previous_state[0]:
            return None
        return self.conv_states[0][:, self.length - self.conv_kernel_size[0] : self.length]

    def lazy_initialization(self, conv_states: torch.Tensor | None = None, **kwargs) -> None:
        """A buffer with room for the new inputs ``conv_states`` [B, T, C] (its state rows are zeroed
        by the first update)."""
        B, T, C = conv_states.shape
        self.dtype, self.device = conv_states.dtype, conv_states.device
        keep = self.conv_kernel_size[0]
        self.conv_states[0] = conv_states.new_empty(B, keep + max(keep, T, 16), C)
        self.is_conv_states_initialized[0] = True

    def update_conv_state(self, conv_states: torch.Tensor, state_idx: int = 0, **kwargs) -> torch.Tensor:
        """Append a step's new conv inputs ``conv_states`` [B, T, C]; returns the next state [B, K - 1, C]."""
        T, keep = conv_states.shape[1], self.conv_kernel_size[0]
        if not self.is_conv_states_initialized[0]:
            self.lazy_initialization(conv_states)
        if not self.has_previous_state[0]:
            self.conv_states[0][:, :keep].zero_()
            self.length, self.has_previous_state[0] = keep, True
        buffer = self.conv_states[0]
        if self.length + T > buffer.shape[1]:
            kept = self.length if self.record_past else keep
            tail = buffer[:, self.length - kept : self.length]
            if kept + T > buffer.shape[1]:
                buffer = buffer.new_empty(buffer.shape[0], kept + max(kept, T, 16), buffer.shape[2])
            else:
                tail = tail.clone()  # moving within the same buffer: the rows may overlap
            buffer[:, :kept] = tail
            self.conv_states[0], self.length = buffer, kept
        buffer[:, self.length : self.length + T] = conv_states
        self.length += T
        self.seen_tokens += T
        return self.get_state()

    def crop(self, tokens_to_remove: int) -> None:
        """Take back the last ``-tokens_to_remove`` tokens (recording the past only, as transformers' layer)."""
        if not self.record_past or tokens_to_remove > 0:
            return super().crop(tokens_to_remove)  # raises with transformers' own message
        self.length += tokens_to_remove
        self.seen_tokens += tokens_to_remove

    def reset(self) -> None:
        super().reset()
        self.length = self.seen_tokens = 0


class DynConvPreTrainedModel(PreTrainedModel):
    config_class = DynConvConfig
    config: DynConvConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["DynConvEncoderLayer", "DynConvAttentionEncoderLayer", "DynConvDecoderLayer"]
    # Pipelines that transformers no longer ships, saved with the model (see pipeline_dynconv.py).
    custom_pipelines: dict = {}

    def _init_weights(self, module):
        """Called once per module, children first (``PreTrainedModel.initialize_weights``), for a new
        model and for the weights a checkpoint lacks; the ``init`` helpers leave loaded weights alone.

        Each rule is keyed on the module that owns the parameters: transformers skips a custom-code
        module whose own parameters are all loaded, which, vacuously, is every module without
        parameters of its own (a dynamic-kernel ``DynamicConv1d``), so a rule there would never run.
        """
        super()._init_weights(module)
        if isinstance(module, WidthProjection):
            # The generic Linear init above zeroes the bias, which would start every extent at half
            # its maximum; the bias logit(config.width_init) starts them at width_init.
            init.normal_(module.weight, std=INITIAL_WIDTH_WEIGHT_STD)
            init.constant_(module.bias, module.initial_bias)
        elif isinstance(module, DynamicConv1d) and module.kernel_type == "light":
            init.xavier_uniform_(module.kernel_weight)
        elif isinstance(module, WidthBudget):
            module.reset_buffers(init)

    def _width_loss(self, outputs) -> torch.Tensor | None:
        """The width terms of every head's loss, a scalar: ``config.width_penalty_coef`` times the
        batch mean of ``outputs.width_penalty`` [B], plus the width budget's constraint terms on each
        layer's batch-mean width (``outputs.layer_width_penalty`` [B, L]; only when it holds every
        budgeted layer: a seq2seq call given encoder outputs without theirs has the decoder's alone).
        None without either. While training, the budget records the widths for its next dual step."""
        terms = []
        if self.config.width_penalty_coef:
            terms.append(self.config.width_penalty_coef * outputs.width_penalty.mean())
        budget, widths = getattr(self, "width_budget", None), outputs.layer_width_penalty
        if budget is not None and widths.shape[1] == len(budget.budget_values):
            terms.append(budget(widths.mean(0)))
        return sum(terms) if terms else None

    def freeze_widths(self, batches, quantile: float = 0.99):
        """A fixed-width copy of this adaptive model, each head keeping the window that its learned
        extents reach on ``batches`` at ``quantile`` (see :func:`dynconv_nlp.freezing.freeze_widths`)."""
        from ...freezing import freeze_widths  # the freezing module builds models of these classes

        return freeze_widths(self, batches, quantile)

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        """``PreTrainedModel.save_pretrained``, plus the model's code and ``auto_map`` for ``trust_remote_code``."""
        if push_to_hub:
            raise ValueError(
                "save_pretrained(push_to_hub=True) would upload before the model's code is written; "
                "call model.push_to_hub(repo_id) or dynconv_nlp.hub.push_to_hub instead"
            )
        self.config.auto_map = dict(AUTO_MAP)
        self.config.record_width_settings()  # the activation these width projections were trained with
        if self.custom_pipelines:
            self.config.custom_pipelines = dict(self.custom_pipelines)
        if _RENAMES_OLD_CHECKPOINTS:
            # Weights under the names of this code: transformers would otherwise write them back under
            # the names of the old layout that CHECKPOINT_RENAMINGS loads (which do not reverse).
            kwargs.setdefault("save_original_format", False)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            save_remote_code(save_directory)


class DynConvEncoder(nn.Module):
    """Embeddings then ``config.encoder_layers`` blocks: token ids [B, T] or their embeddings [B, T, C]
    -> :class:`DynConvModelOutput`.

    Args:
        embed_tokens: give the encoder token embeddings of its own (``self.embed_tokens``), so that it
            takes ``input_ids``: the encoder of :class:`DynConvSeq2SeqModel`, whose ``embed_tokens`` is
            tied to ``shared``, and what ``get_encoder()`` returns to ``generate()``. Without,
            :class:`DynConvModel` holds the token embeddings (where its checkpoints keep them) and
            passes ``inputs_embeds``.
    """

    def __init__(self, config: DynConvConfig, embed_tokens: bool = False):
        super().__init__()
        self.config = config
        if embed_tokens:
            self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        # Token types (sentence A / B) serve pair classification; a translation encoder never gets them,
        # and a weight without gradients would stop DDP.
        self.embeddings = DynConvEmbeddings(config, with_token_types=not config.is_encoder_decoder)
        self.layers = nn.ModuleList(
            _attention_layer(config) if i in config.attention_layers else DynConvEncoderLayer(
                config.hidden_size, config.num_attention_heads, kernel_size, config.intermediate_size,
                head_windows=config.head_windows[i] if config.head_windows else None, **_conv_options(config)
            )
            for i, kernel_size in enumerate(config.kernel_size)
        )
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps) if config.normalize_before else None

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvModelOutput:
        """
        Args:
            input_ids: [B, T] token ids (needs ``embed_tokens``), or ``inputs_embeds`` [B, T, E] (E: ``embedding_size``).
            attention_mask: [B, T], 1 for tokens, 0 for padding; padded positions contribute nothing.
            token_type_ids: [B, T] segment ids, used where the embeddings have token types.
            output_hidden_states: return every layer's output (default: the config's).
            output_widths: return every layer's left/right extents.
            kwargs: what ``generate()`` passes every encoder (``output_attentions``, ...); ignored.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            if not hasattr(self, "embed_tokens"):
                raise ValueError("this encoder has no token embeddings (DynConvModel holds them): pass inputs_embeds")
            inputs_embeds = self.embed_tokens(input_ids)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        position_ids = positions_from_mask(attention_mask, inputs_embeds.shape[1], 0, inputs_embeds.device)
        hidden_states = self.embeddings(inputs_embeds, position_ids, token_type_ids)
        all_hidden_states, all_widths, penalties = [hidden_states], [], []
        for layer in self.layers:
            block = layer(hidden_states, attention_mask)
            hidden_states = block.hidden_states
            all_hidden_states.append(hidden_states)
            if block.left_extent is not None:  # attention layers have no widths
                all_widths.append(_stack_widths(block))
            penalties.append(block.width_penalty)
        if self.final_layer_norm is not None:
            hidden_states = self.final_layer_norm(hidden_states)
            all_hidden_states[-1] = hidden_states
        return DynConvModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            widths=tuple(all_widths) if output_widths else None,
            width_penalty=_mean_over_conv_layers(penalties, self.config.conv_layers),
            layer_width_penalty=torch.stack(penalties, dim=1),
        )


class DynConvModel(DynConvPreTrainedModel):
    """The encoder with its token embeddings: input_ids [B, T] -> :class:`DynConvModelOutput`."""

    def __init__(self, config: DynConvConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, config.pad_token_id)
        self.encoder = DynConvEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embed_tokens = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvModelOutput:
        """
        Args:
            input_ids: [B, T] token ids (or ``inputs_embeds`` [B, T, E], E: ``embedding_size``).
            attention_mask: [B, T], 1 for tokens, 0 for padding; padded positions contribute nothing.
            token_type_ids: [B, T] segment ids (first / second sentence), optional.
            output_hidden_states: return every layer's output.
            output_widths: return every layer's left/right extents.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        return self.encoder(
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_widths=output_widths,
            return_dict=True,
        )


def _width_budget(config: DynConvConfig, decoder: bool) -> WidthBudget | None:
    """The :class:`WidthBudget` over the encoder layers and, with ``decoder``, then the decoder's, when
    the config sets a budget on either (a stack without one gets 1 per layer: no constraint)."""
    stacks = [(config.width_budget, config.encoder_layers)]
    if decoder:
        stacks.append((config.decoder_width_budget, config.decoder_layers))
    if all(budgets is None for budgets, _ in stacks):
        return None
    budgets = [b for budgets, layers in stacks for b in (budgets or [1.0] * layers)]
    return WidthBudget(budgets, config.width_budget_warmup_steps, config.width_budget_step_size)


def _plus(loss: torch.Tensor | None, width_loss: torch.Tensor | None) -> torch.Tensor | None:
    """The task loss plus the width terms, where there are both."""
    return loss + width_loss if loss is not None and width_loss is not None else loss


class DynConvClassificationHead(nn.Module):
    """Pooled features [B, C] -> logits [B, num_labels]: dropout, dense, tanh, dropout, projection."""

    def __init__(self, config: DynConvConfig):
        super().__init__()
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.dense(self.dropout(pooled)))
        return self.out_proj(self.dropout(x))


def pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """[B, T, C] -> [B, C]: the mean over real tokens, or the first token."""
    if pooling == "first":
        return hidden_states[:, 0]
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    mask = attention_mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


class DynConvForSequenceClassification(DynConvPreTrainedModel):
    """Pooled encoder output -> classification head. ``config.problem_type`` picks the loss:
    regression (MSE), single-label (cross-entropy) or multi-label (BCE with logits)."""

    def __init__(self, config: DynConvConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = DynConvModel(config)
        self.classifier = DynConvClassificationHead(config)
        self.width_budget = _width_budget(config, decoder=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvHeadOutput:
        """
        Args:
            labels: [B] class ids, [B] floats (regression, ``num_labels == 1``) or [B, num_labels]
                multi-hot floats (multi-label).
            Other arguments: as :meth:`DynConvModel.forward`.
        """
        outputs = self.model(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_hidden_states, output_widths
        )
        logits = self.classifier(pool(outputs.last_hidden_state, attention_mask, self.config.classifier_pooling))
        loss = None
        if labels is not None:
            loss = _plus(self._task_loss(logits, labels.to(logits.device)), self._width_loss(outputs))
        return DynConvHeadOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            widths=outputs.widths,
            width_penalty=outputs.width_penalty,
        )

    def _task_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return F.mse_loss(logits.view(labels.shape[0], -1), labels.to(logits.dtype).view(labels.shape[0], -1))
        if self.config.problem_type == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class DynConvForTokenClassification(DynConvPreTrainedModel):
    """A label per token: dropout and a linear layer on the encoder output."""

    def __init__(self, config: DynConvConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = DynConvModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.width_budget = _width_budget(config, decoder=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvHeadOutput:
        """
        Args:
            labels: [B, T] class ids; -100 marks tokens without a label.
            Other arguments: as :meth:`DynConvModel.forward`.
        """
        outputs = self.model(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_hidden_states, output_widths
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.to(logits.device).view(-1))
            loss = _plus(loss, self._width_loss(outputs))
        return DynConvHeadOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            widths=outputs.widths,
            width_penalty=outputs.width_penalty,
        )


class DynConvLMHead(nn.Module):
    """[B, T, C] -> [B, T, vocab_size]: dense (to the embedding width E), GELU, layer norm, then the
    (tied) output embedding, as BERT's and ELECTRA's generator heads."""

    def __init__(self, config: DynConvConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.layer_norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(hidden_states))))


class DynConvForMaskedLM(DynConvPreTrainedModel):
    """Masked language modelling on the encoder; the output embedding is tied to the input one."""

    _tied_weights_keys = {"lm_head.decoder.weight": "model.embed_tokens.weight"}

    def __init__(self, config: DynConvConfig):
        super().__init__(config)
        self.model = DynConvModel(config)
        self.lm_head = DynConvLMHead(config)
        self.width_budget = _width_budget(config, decoder=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.lm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvHeadOutput:
        """
        Args:
            labels: [B, T] token ids to predict; -100 everywhere else.
            Other arguments: as :meth:`DynConvModel.forward`.
        """
        outputs = self.model(
            input_ids, attention_mask, token_type_ids, inputs_embeds, output_hidden_states, output_widths
        )
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.to(logits.device).view(-1))
            loss = _plus(loss, self._width_loss(outputs))
        return DynConvHeadOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            widths=outputs.widths,
            width_penalty=outputs.width_penalty,
        )


class DynConvDecoder(nn.Module):
    """Causal blocks with cross-attention: decoder token ids [B, T] (or their embeddings [B, T, C]) and
    the encoder output -> :class:`DynConvDecoderOutput`. Its ``embed_tokens`` is tied to the seq2seq
    model's ``shared`` embeddings."""

    def __init__(self, config: DynConvConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.embeddings = DynConvEmbeddings(config, with_token_types=False)
        self.layers = nn.ModuleList(
            DynConvDecoderLayer(
                config.hidden_size,
                config.num_attention_heads,
                kernel_size,
                config.intermediate_size,
                config.num_attention_heads,
                attention_dropout=config.attention_probs_dropout_prob,
                head_windows=config.decoder_head_windows[i] if config.decoder_head_windows else None,
                **_conv_options(config),
            )
            for i, kernel_size in enumerate(config.decoder_kernel_size)
        )
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps) if config.normalize_before else None

    def new_cache(self) -> EncoderDecoderCache:
        """An empty cache: a conv-state layer per decoder layer, and the cross-attention keys/values."""
        states = Cache(layers=[DynConvStateCacheLayer(layer.conv.kernel_size - 1) for layer in self.layers])
        return EncoderDecoderCache(states, DynamicCache())

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvDecoderOutput:
        """
        Args:
            input_ids: [B, T] the new decoder tokens (or ``inputs_embeds`` [B, T, C]).
            attention_mask: [B, T] decoder padding mask (without a cache).
            encoder_hidden_states: [B, S, C]; encoder_attention_mask: [B, S]. Once the cache holds the
                cross-attention keys/values, they are read from there.
            cache: from a previous step: read and updated in place. Only the new tokens are passed then.
            use_cache: decode incrementally, and return the cache (default: ``config.use_cache``; a
                new one when none is given). ``use_cache=False`` ignores a given cache.
            output_hidden_states: return every layer's output (default: the config's).
            output_widths: return every layer's extents.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of decoder input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if use_cache is None:
            use_cache = self.config.use_cache
        checkpointing = any(layer.gradient_checkpointing for layer in self.layers)
        if use_cache and checkpointing and self.training and torch.is_grad_enabled():
            logger.warning_once("use_cache=True is incompatible with gradient checkpointing: setting use_cache=False")
            use_cache = False
        if not use_cache:
            cache = None
        elif cache is None:
            cache = self.new_cache()

        T = inputs_embeds.shape[1]
        states = cache.self_attention_cache if cache is not None else None
        past_length = states.layers[0].seen_tokens if states is not None else 0
        position_ids = positions_from_mask(attention_mask, T, past_length, inputs_embeds.device)
        hidden_states = self.embeddings(inputs_embeds, position_ids)
        all_hidden_states, all_widths, penalties = [hidden_states], [], []
        for i, layer in enumerate(self.layers):
            conv_state = cross_key_value = None
            if cache is not None:
                conv_state = states.layers[i].get_state()
                if cache.is_updated.get(i, False):
                    cross = cache.cross_attention_cache.layers[i]
                    cross_key_value = (cross.keys, cross.values)
            block = layer(
                hidden_states,
                encoder_hidden_states,
                encoder_attention_mask,
                attention_mask,
                conv_state,
                cross_key_value,
                use_cache=cache is not None,
                return_conv_inputs=cache is not None,
            )
            if cache is not None:
                states.update_conv_state(block.conv_inputs, i)
                if not cache.is_updated.get(i, False):
                    cache.cross_attention_cache.update(*block.cross_key_value, i)
                    cache.is_updated[i] = True
            hidden_states = block.hidden_states
            all_hidden_states.append(hidden_states)
            all_widths.append(_stack_widths(block))
            penalties.append(block.width_penalty)
        if self.final_layer_norm is not None:
            hidden_states = self.final_layer_norm(hidden_states)
            all_hidden_states[-1] = hidden_states
        return DynConvDecoderOutput(
            last_hidden_state=hidden_states,
            cache=cache,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            widths=tuple(all_widths) if output_widths else None,
            layer_width_penalty=torch.stack(penalties, dim=1),
            width_penalty=torch.stack(penalties).mean(0),
        )


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Teacher forcing: labels [B, T] -> decoder inputs [B, T], the start token then labels[:, :-1] (-100 -> pad)."""
    shifted = labels.new_full(labels.shape, decoder_start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_token_id)


def _as_encoder_output(encoder_outputs) -> DynConvModelOutput:
    """``encoder_outputs`` as given to a seq2seq forward -> :class:`DynConvModelOutput`.

    Another ModelOutput keeps the fields it has. A tuple (``return_dict=False``) drops its None
    entries, so only its ends are certain: the last hidden state first and, from this encoder, the
    width penalty last. Without a width penalty the seq2seq penalty is the decoder's alone.
    """
    if isinstance(encoder_outputs, DynConvModelOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, ModelOutput):
        return DynConvModelOutput(
            last_hidden_state=encoder_outputs[0],
            hidden_states=encoder_outputs.get("hidden_states"),
            widths=encoder_outputs.get("widths"),
            layer_width_penalty=encoder_outputs.get("layer_width_penalty"),
            width_penalty=encoder_outputs.get("width_penalty"),
        )
    penalty = encoder_outputs[-1] if len(encoder_outputs) > 1 else None
    if not (isinstance(penalty, torch.Tensor) and penalty.dim() == 1):
        penalty = None
    return DynConvModelOutput(last_hidden_state=encoder_outputs[0], width_penalty=penalty)


def _as_encoder_decoder(config: DynConvConfig) -> DynConvConfig:
    """The config of an encoder-decoder: ``config`` itself when it says ``is_encoder_decoder``, else a
    copy that does (generate() and the encoder's embeddings read it). The config given is not changed."""
    if config.is_encoder_decoder:
        return config
    config = copy.deepcopy(config)
    config.is_encoder_decoder = True
    return config


class DynConvSeq2SeqModel(DynConvPreTrainedModel):
    """Encoder-decoder without a head, as BART's and Marian's base models: the ``shared`` token
    embeddings, the ``encoder`` and the ``decoder`` (each with an ``embed_tokens`` tied to ``shared``)
    -> :class:`DynConvSeq2SeqModelOutput`."""

    _tied_weights_keys = {
        "encoder.embed_tokens.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
    }

    def __init__(self, config: DynConvConfig):
        if config.decoder_layers < 1:
            raise ValueError(f"an encoder-decoder needs decoder_layers >= 1, got {config.decoder_layers}")
        if config.embedding_size != config.hidden_size:
            raise ValueError(f"the encoder-decoder's layers read its token embeddings: embedding_size "
                             f"({config.embedding_size}) must equal hidden_size ({config.hidden_size})")
        config = _as_encoder_decoder(config)
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.encoder = DynConvEncoder(config, embed_tokens=True)
        self.decoder = DynConvDecoder(config)
        self.post_init()

    def get_expanded_tied_weights_keys(self, all_submodels: bool = False) -> dict:
        # The encoder and decoder always read the shared embeddings: transformers ties only when
        # config.tie_word_embeddings, which here decides about the output embedding (lm_head) alone.
        if all_submodels:
            return super().get_expanded_tied_weights_keys(all_submodels=True)
        return dict(self._tied_weights_keys)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding):
        self.shared = value
        self.encoder.embed_tokens = self.shared
        self.decoder.embed_tokens = self.shared

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: DynConvModelOutput | tuple | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        decoder_inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvSeq2SeqModelOutput:
        """
        Args:
            input_ids: [B, S] source tokens (or ``inputs_embeds``, or ``encoder_outputs`` from a previous call).
            attention_mask: [B, S] source padding mask.
            decoder_input_ids: [B, T] target tokens so far (or ``decoder_inputs_embeds``).
            decoder_attention_mask: [B, T] target padding mask.
            cache: from a previous step (``use_cache``): only the new decoder tokens are passed then.
            use_cache: return a cache to decode the next tokens incrementally (default: ``config.use_cache``).
            output_hidden_states, output_widths: as :meth:`DynConvModel.forward`, for both stacks.
        """
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            raise ValueError("pass decoder_input_ids (or decoder_inputs_embeds, or labels to the LM model)")
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                output_hidden_states=output_hidden_states,
                output_widths=output_widths,
                return_dict=True,
            )
        else:
            encoder_outputs = _as_encoder_output(encoder_outputs)
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            cache=cache,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            output_widths=output_widths,
            return_dict=True,
        )
        # Per sequence, the mean over every conv layer, encoder and decoder alike.
        width_penalty = decoder_outputs.width_penalty
        if encoder_outputs.width_penalty is not None:
            num_encoder, num_decoder = len(self.encoder.layers), len(self.decoder.layers)
            width_penalty = (encoder_outputs.width_penalty * num_encoder + width_penalty * num_decoder) / (
                num_encoder + num_decoder
            )
        return DynConvSeq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_widths=encoder_outputs.widths,
            decoder_widths=decoder_outputs.widths,
            width_penalty=width_penalty,
            layer_width_penalty=torch.cat(
                [p for p in (encoder_outputs.layer_width_penalty, decoder_outputs.layer_width_penalty) if p is not None],
                dim=1,
            ),
        )


class DynConvForConditionalGeneration(DynConvPreTrainedModel, GenerationMixin):
    """Encoder-decoder for translation and other text-to-text tasks: :class:`DynConvSeq2SeqModel`
    (``self.model``) and an LM head; works with ``generate()`` (greedy, beam search, sampling).
    Input and output embeddings are shared, and tied unless ``config.tie_word_embeddings=False``."""

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    custom_pipelines = CUSTOM_PIPELINES

    def __init__(self, config: DynConvConfig):
        config = _as_encoder_decoder(config)  # before PreTrainedModel builds the generation config from it
        super().__init__(config)
        self.model = DynConvSeq2SeqModel(config)  # checks decoder_layers
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.width_budget = _width_budget(config, decoder=True)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() must not build a key/value DynamicCache: the decoder builds the conv-state cache.
        return False

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.shared

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.lm_head = new_embeddings

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs [B, T] for ``labels`` [B, T]: shifted right (used by ``DataCollatorForSeq2Seq``)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def new_cache(self) -> EncoderDecoderCache:
        """An empty decoder cache (see :meth:`DynConvDecoder.new_cache`)."""
        return self.model.decoder.new_cache()

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: DynConvModelOutput | tuple | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        decoder_inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_widths: bool = False,
        **kwargs,
    ) -> DynConvSeq2SeqLMOutput:
        """
        Args:
            labels: [B, T] target ids, -100 where there is nothing to predict; the decoder inputs
                default to them shifted right.
            use_cache: return a cache to decode the next tokens incrementally (default:
                ``config.use_cache``, off when ``labels`` are given).
            Other arguments: as :meth:`DynConvSeq2SeqModel.forward`.
        """
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
        if use_cache is None:
            use_cache = self.config.use_cache and labels is None
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            output_widths=output_widths,
            return_dict=True,
        )
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.to(logits.device).reshape(-1))
        width_loss = self._width_loss(outputs)
        return DynConvSeq2SeqLMOutput(
            loss=_plus(loss, width_loss),
            logits=logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_widths=outputs.encoder_widths,
            decoder_widths=outputs.decoder_widths,
            width_penalty=outputs.width_penalty,
            width_loss=width_loss,
        )


def _register_checkpoint_renamings() -> bool:
    """Let checkpoints of the older seq2seq layout load: it had the encoder model (token embeddings
    ``model.embed_tokens``, ``model.encoder``) as ``model`` and the decoder beside it (``decoder.*``);
    they are now ``model.shared``, ``model.encoder`` and ``model.decoder``. The same renaming lets an
    encoder-only checkpoint (``embed_tokens``, ``encoder``) start a translation model's encoder.

    Returns whether this transformers has the conversion-mapping API (if not, pass
    ``key_mapping=CHECKPOINT_RENAMINGS`` to ``from_pretrained`` for an old checkpoint).
    """
    try:
        from transformers.conversion_mapping import register_checkpoint_conversion_mapping
        from transformers.core_model_loading import WeightRenaming
    except ImportError:
        return False
    renamings = [WeightRenaming(source, target) for source, target in CHECKPOINT_RENAMINGS.items()]
    # overwrite: the same class may register again from remote code in the same process.
    register_checkpoint_conversion_mapping("DynConvForConditionalGeneration", renamings, overwrite=True)
    return True


# Old checkpoint key (a regex) -> key of this layout, for DynConvForConditionalGeneration.
CHECKPOINT_RENAMINGS = {
    r"^decoder\.": "model.decoder.",
    r"^model\.embed_tokens\.": "model.shared.",
    r"^embed_tokens\.": "model.shared.",
}
_RENAMES_OLD_CHECKPOINTS = _register_checkpoint_renamings()


# The public classes, each with the Auto class it registers with (None: exported, not registered):
# the one list of them. ``import dynconv_nlp`` exports them (and ``dynconv_nlp.models.dynconv``) and
# registers them (:func:`register_auto_classes`); a saved model's config.json maps each Auto class to
# its class in the saved code (:data:`AUTO_MAP`), for ``trust_remote_code``.
AUTO_CLASSES = {
    "DynConvConfig": "AutoConfig",
    "DynConvModel": "AutoModel",
    "DynConvForSequenceClassification": "AutoModelForSequenceClassification",
    "DynConvForTokenClassification": "AutoModelForTokenClassification",
    "DynConvForMaskedLM": "AutoModelForMaskedLM",
    "DynConvForConditionalGeneration": "AutoModelForSeq2SeqLM",
    "DynConvPreTrainedModel": None,
    "DynConvSeq2SeqModel": None,
}
# Written into config.json on save: where transformers finds each class in the saved code (the flat
# files of remote_code.py: configuration_dynconv.py, modeling_dynconv.py).
AUTO_MAP = {
    auto: f"{globals()[name].__module__.rpartition('.')[2]}.{name}" for name, auto in AUTO_CLASSES.items() if auto
}


def register_auto_classes() -> None:
    """Register the config with ``AutoConfig`` and each model with its Auto class (:data:`AUTO_CLASSES`)."""
    transformers.AutoConfig.register(DynConvConfig.model_type, DynConvConfig, exist_ok=True)
    for name, auto in AUTO_CLASSES.items():
        if auto not in (None, "AutoConfig"):
            getattr(transformers, auto).register(DynConvConfig, globals()[name], exist_ok=True)


__all__ = list(AUTO_CLASSES)
