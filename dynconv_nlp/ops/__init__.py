"""The dynamic convolution op and its backends."""

from .dispatch import BACKENDS, check_inputs, dynamic_conv1d, select_backend, triton_available

__all__ = ["BACKENDS", "check_inputs", "dynamic_conv1d", "select_backend", "triton_available"]
