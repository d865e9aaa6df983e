"""Layers: the adaptive-width DynamicConv1d and the encoder/decoder blocks built on it."""

from .blocks import CrossAttention, DynConvBlockOutput, DynConvDecoderBlock, DynConvEncoderBlock, FeedForward
from .dynamic_conv import DynamicConv1d, DynamicConvOutput, WidthProjection, extent_fraction, ramp_mask
from .width_budget import WidthBudget

__all__ = [
    "CrossAttention",
    "DynConvBlockOutput",
    "DynConvDecoderBlock",
    "DynConvEncoderBlock",
    "DynamicConv1d",
    "DynamicConvOutput",
    "FeedForward",
    "WidthBudget",
    "WidthProjection",
    "extent_fraction",
    "ramp_mask",
]
