"""One public op, several implementations: ``dynamic_conv1d(x, weight, padding_l, backend=...)``.

Backends are chosen by name, as transformers chooses attention implementations. ``"auto"``
picks by device and shape (see :func:`select_backend`) and never changes backend behind the
caller's back: a backend that cannot run raises instead of falling back.
"""

import logging
import os
import shutil
from functools import cache
from typing import Callable

import torch

from .band import dynamic_conv1d_band
from .compiled import dynamic_conv1d_compiled
from .naive import dynamic_conv1d_naive
from .shift import dynamic_conv1d_shift
from .unfold import dynamic_conv1d_unfold


def dynamic_conv1d_triton(
    x: torch.Tensor, weight: torch.Tensor, padding_l: int, zero_taps_inactive: bool = False
) -> torch.Tensor:
    """Triton GPU kernels (forward and backward); on the CPU only under ``TRITON_INTERPRET=1``."""
    from .triton.dynamic_conv1d import dynamic_conv1d_triton as triton_op  # triton is an optional dependency

    return triton_op(x, weight, padding_l, zero_taps_inactive)


BACKENDS: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "naive": dynamic_conv1d_naive,
    "unfold": dynamic_conv1d_unfold,
    "shift": dynamic_conv1d_shift,
    "band": dynamic_conv1d_band,
    "compiled": dynamic_conv1d_compiled,
    "triton": dynamic_conv1d_triton,
}

# Backends that skip the kernel gradient of zero taps when the caller declares them inactive.
SKIPS_INACTIVE_TAPS = frozenset({"triton"})

# Below this kernel size the band matrices are mostly padding and the shifted adds win
# (measured with benchmarks/benchmark_ops.py on a 2-core CPU).
_BAND_MIN_KERNEL_SIZE = 8


logger = logging.getLogger(__name__)


@cache
def triton_available() -> bool:
    """Whether triton imports (checked once: a failed import would search the path again on every call)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def cpp_compiler_available() -> bool:
    """Whether inductor can build its CPU kernels: it needs a C++ compiler ($CXX, g++ or clang++)."""
    return any(shutil.which(name) for name in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if name)


# Why "auto" picked what it did: fallbacks, which cost speed, are warnings; the other choices are info.
CUDA_TRITON = "CUDA tensors and triton is installed"
CUDA_NO_TRITON = "triton is not installed, so the CPU-tuned eager path runs on CUDA: pip install dynconv_nlp[triton]"
OTHER_DEVICE = "no backend is tuned for this device, so the eager path runs"
CPU_TRAINING = "training on the CPU (gradients wanted) and a C++ compiler is there for torch.compile"
CPU_TRAINING_NO_COMPILER = (
    "training on the CPU (gradients wanted) but no C++ compiler ($CXX, g++, clang++ or c++) for torch.compile, "
    "so the eager path runs instead of compiled"
)
CPU_INFERENCE = "no gradients wanted (inference, evaluation): the eager path, which starts at once"
FALLBACKS = frozenset({CUDA_NO_TRITON, CPU_TRAINING_NO_COMPILER})
_BAND_OR_SHIFT = {"band": f"kernel size >= {_BAND_MIN_KERNEL_SIZE}", "shift": f"kernel size < {_BAND_MIN_KERNEL_SIZE}"}

# The (device type, backend, reason) choices logged so far in this process: each is logged once.
_logged_choices: set[tuple[str, str, str]] = set()


def choose_backend(x: torch.Tensor, weight: torch.Tensor) -> tuple[str, str]:
    """The backend ``"auto"`` runs and why, as :func:`select_backend` (which logs it) picks it."""
    eager = "band" if weight.shape[-1] >= _BAND_MIN_KERNEL_SIZE else "shift"
    if x.is_cuda:
        if triton_available():
            return "triton", CUDA_TRITON
        return eager, CUDA_NO_TRITON
    if x.device.type != "cpu":
        return eager, OTHER_DEVICE
    wants_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if wants_grad:
        # Inside torch.compile the compiler is known to work (and its check must not be traced).
        if torch.compiler.is_compiling() or cpp_compiler_available():
            return "compiled", CPU_TRAINING
        return eager, CPU_TRAINING_NO_COMPILER
    return eager, CPU_INFERENCE


def select_backend(x: torch.Tensor, weight: torch.Tensor) -> str:
    """The backend ``"auto"`` runs: the fastest for a typical run, compile time included.

    * CUDA: triton, when it is installed.
    * CPU, training (gradients wanted): ``compiled``. Its one compilation (seconds: the first call
      took 3.65 s in benchmarks/ops_cpu/results.md) is repaid
      after a few hundred calls, a few dozen steps of a model, and a training run makes thousands.
    * CPU otherwise (inference, evaluation): the eager paths, which start at once: ``band``,
      or ``shift`` for small kernels, where the band matrices would be mostly padding.
    * Where those cannot run (CUDA without triton, the CPU without a C++ compiler) or another
      device: ``band`` or ``shift`` as well.

    The choice and its reason are logged (logger ``dynconv_nlp.ops.dispatch``) once per process for
    each distinct (device type, backend, reason): as a warning for the fallbacks, as info otherwise.
    """
    backend, reason = choose_backend(x, weight)
    if not torch.compiler.is_compiling():  # nothing to log while torch.compile traces
        _log_once(x.device.type, backend, reason)
    return backend


def _log_once(device_type: str, backend: str, reason: str) -> None:
    key = (device_type, backend, reason)
    if key in _logged_choices:
        return
    _logged_choices.add(key)
    detail = f"; {_BAND_OR_SHIFT[backend]}" if backend in _BAND_OR_SHIFT else ""
    logger.log(
        logging.WARNING if reason in FALLBACKS else logging.INFO,
        "dynamic_conv1d backend 'auto' on %s runs %r: %s%s", device_type, backend, reason, detail,
    )


def check_inputs(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> None:
    """Raise ``ValueError`` naming the bad value unless x [B, T, C] and weight [B, T, H, K] fit together."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a [B, T, C] tensor, got {_describe(x)}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise ValueError(f"weight must be a [B, T, H, K] tensor, got {_describe(weight)}")
    if weight.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"weight's [B, T] = {list(weight.shape[:2])} must match x's [B, T] = {list(x.shape[:2])}"
        )
    C, H, K = x.shape[2], weight.shape[2], weight.shape[3]
    if H == 0 or C % H != 0:
        raise ValueError(f"the number of heads H = {H} (weight.shape[2]) must divide the channels C = {C}")
    if K == 0:
        raise ValueError("the kernel size K = weight.shape[3] must be at least 1, got 0")
    if isinstance(padding_l, bool) or not isinstance(padding_l, int) or not 0 <= padding_l < K:
        raise ValueError(f"padding_l must be an int with 0 <= padding_l < K = {K}, got {padding_l!r}")
    if not x.is_floating_point() or x.dtype != weight.dtype:
        raise ValueError(
            f"x and weight must share one floating dtype, got x {x.dtype} and weight {weight.dtype}"
        )
    if x.device != weight.device:
        raise ValueError(f"x and weight must be on one device, got x on {x.device} and weight on {weight.device}")


def _describe(t) -> str:
    return f"shape {list(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__


def dynamic_conv1d(
    x: torch.Tensor, weight: torch.Tensor, padding_l: int, *, backend: str = "auto", zero_taps_inactive: bool = False
) -> torch.Tensor:
    """Dynamic 1D convolution with per-token, per-head kernels.

    ``y[b, t, c] = sum_j weight[b, t, c // (C // H), j] * x[b, t + j - padding_l, c]``, with x = 0
    outside [0, T).

    Args:
        x: [B, T, C] inputs.
        weight: [B, T, H, K] taps, already normalised; head h serves channels h*C/H ... (h+1)*C/H - 1.
        padding_l: taps to the left of the token: K // 2 centred, K - 1 causal; 0 <= padding_l < K.
        backend: a key of :data:`BACKENDS`, or ``"auto"``.
        zero_taps_inactive: declare that taps whose weight is exactly 0 are outside the kernel, as
            after a masked softmax or dropout, whose backward multiplies their gradient by 0 anyway.
            Their gradient is then unspecified: backends in :data:`SKIPS_INACTIVE_TAPS` return 0
            for a tap that is zero on a whole tile of tokens instead of computing it.

    Returns:
        y: [B, T, C], dtype of x.
    """
    check_inputs(x, weight, padding_l)
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)} or 'auto'")
    if x.numel() == 0:
        # B, T or C is 0: y is empty too. Multiplying keeps the (zero) gradients flowing to both inputs.
        return x * weight.sum()
    if backend == "auto":
        backend = select_backend(x, weight)
    # The op keeps its inputs' precision: autocast would otherwise run the matmuls in half.
    options = dict(zero_taps_inactive=True) if zero_taps_inactive and backend in SKIPS_INACTIVE_TAPS else {}
    with torch.autocast(x.device.type, enabled=False):
        return BACKENDS[backend](x, weight, padding_l, **options)
