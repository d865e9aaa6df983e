"""Layers: the adaptive-width DynamicConv1d and the encoder/decoder blocks built on it."""

from .blocks import CrossAttention, DynConvBlockOutput, DynConvDecoderBlock, DynConvEncoderBlock, FeedForward
from .dynamic_conv import DynamicConv1d, DynamicConvOutput, WidthProjection, ramp_mask

__all__ = [
    "CrossAttention",
    "DynConvBlockOutput",
    "DynConvDecoderBlock",
    "DynConvEncoderBlock",
    "DynamicConv1d",
    "DynamicConvOutput",
    "FeedForward",
    "WidthProjection",
    "ramp_mask",
]
