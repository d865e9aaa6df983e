"""Triton kernels for the dynamic convolution (optional: needs ``pip install triton``)."""

from .dynamic_conv1d import dynamic_conv1d_triton

__all__ = ["dynamic_conv1d_triton"]
