"""Layers: the adaptive-width DynamicConv1d, the encoder/decoder blocks built on it, and the
self-attention block of hybrid encoders."""

from .blocks import (
    AttentionEncoderBlock,
    CrossAttention,
    DynConvBlockOutput,
    DynConvDecoderBlock,
    DynConvEncoderBlock,
    FeedForward,
    SelfAttention,
)
from .dynamic_conv import DynamicConv1d, DynamicConvOutput, WidthProjection, extent_fraction, ramp_mask
from .width_budget import WidthBudget

__all__ = [
    "AttentionEncoderBlock",
    "CrossAttention",
    "DynConvBlockOutput",
    "DynConvDecoderBlock",
    "DynConvEncoderBlock",
    "DynamicConv1d",
    "DynamicConvOutput",
    "FeedForward",
    "SelfAttention",
    "WidthBudget",
    "WidthProjection",
    "extent_fraction",
    "ramp_mask",
]
