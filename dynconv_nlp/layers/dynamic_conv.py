"""DynamicConv1d: per-token kernels whose left and right extents are learned per token and head.

For every token t and head h the layer generates K tap logits ``a[t, h, :]`` (``kernel="dynamic"``;
``"light"`` learns one kernel per head instead) and, with ``width="adaptive"``, a left extent
``l in [0, P]`` and a right extent ``r in [0, K - 1 - P]``. A soft ramp of length rho (Adaptive
Attention Span) turns taps off beyond the extents, inside the softmax::

    m[t, h, j] = clamp((e + rho - |j - P|) / rho, 0, 1),  e = l for taps left of t, r for taps right
    w[t, h, :] = softmax(a[t, h, :] + log m[t, h, :])     # taps with m = 0 get exactly 0

so gradients reach the extents through the ramp, and taps beyond ``e + rho`` carry exact zeros,
which the layer trims away before calling the op (``trim=True``, on the CPU).

An extent is ``max * (floor + (1 - floor) * g(z))`` of a logit z from the width projection. With
``g = sigmoid`` (``extent_activation="sigmoid"``) the gradient vanishes at both ends, so a width that
a penalty drove to zero never comes back; ``g = clamp(z, 0, 1)`` (``"clamp"``) passes gradients
straight through outside [0, 1] when they point back inside, and the floor keeps the next tap
partly on, so a collapsed width still feels what the task would gain from it.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.band import band_tile_outputs
from ..ops.dispatch import BACKENDS, dynamic_conv1d
from ..ops.gathered import gathered_conv

# The choices of the layer's settings; DynConvConfig checks its own against these same tuples.
KERNEL_TYPES = ("dynamic", "light")
WIDTH_MODES = ("adaptive", "fixed")
EXTENT_ACTIVATIONS = ("sigmoid", "clamp")
TRIM_MODES = (True, False, "tile", "token")
# The op backends a layer may name: dynconv_nlp.ops checks the name when the layer runs.
CONV_BACKENDS = ("auto", *BACKENDS)
# Tokens per tile of trim="tile": each tile gets the taps its own tokens use.
TRIM_TILE = 32
# trim="token": the share of a call's real tokens whose taps on each side every token gets at once
# (one matmul, one call of the op); the wider tokens' further taps are generated and applied alone.
TRIM_TOKEN_CORE = 0.95


@dataclass
class DynamicConvOutput:
    """What :class:`DynamicConv1d` returns.

    Attributes:
        hidden_states: [B, T, C] output.
        left_extent: [B, T, H] how many taps each token and head looks to the left (P for fixed width).
        right_extent: [B, T, H] the same to the right (0 when causal).
        width_penalty: [B], each sequence's mean of (l + r) / (K - 1) over its real tokens and heads;
            0 for fixed width, where there is nothing to learn. A model adds
            ``lambda * width_penalty.mean()`` to its loss. (Per sequence, so that it follows the batch
            through ``generate()``'s beam expansion like every other per-example tensor.)
        conv_state: [B, K - 1, C] the last K - 1 conv inputs, when decoding incrementally, else None.
        conv_inputs: [B, T, C] the new tokens' conv inputs instead of ``conv_state``, when asked for
            (``return_conv_inputs``), else None.
    """

    hidden_states: torch.Tensor
    left_extent: torch.Tensor
    right_extent: torch.Tensor
    width_penalty: torch.Tensor
    conv_state: torch.Tensor | None = None
    conv_inputs: torch.Tensor | None = None


def ramp_mask(
    left: torch.Tensor, right: torch.Tensor, kernel_size: int, padding_l: int, ramp: float, tap_range: range | None = None
) -> torch.Tensor:
    """Soft tap mask [..., len(tap_range)] (default all K taps) from extents left, right [...].

    The centre tap is always 1; a tap at distance d is on (mask > 0) exactly where d < extent + ramp.
    """
    tap_range = range(kernel_size) if tap_range is None else tap_range
    offsets = torch.arange(tap_range.start, tap_range.stop, device=left.device, dtype=left.dtype) - padding_l
    # (extent + ramp) - d, as active_taps rounds it; the sums over [..., K] cost one pass fewer
    # when made on the extents [...], and dividing by a ramp of 1 is skipped (it changes nothing).
    reach = torch.where(offsets < 0, (left + ramp).unsqueeze(-1), (right + ramp).unsqueeze(-1))
    mask = reach - offsets.abs()
    return (mask / ramp if ramp != 1 else mask).clamp_(0.0, 1.0)


class ClampInward(torch.autograd.Function):
    """clamp(z, 0, 1) whose gradient is the identity, except that outside [0, 1] a gradient that would
    push z further out is dropped: a saturated extent can always be pulled back, never driven away."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        return z.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        # Gradient descent moves z by -grad: below 0 only a negative gradient raises it, above 1 a positive one lowers it.
        outward = ((z < 0) & (grad > 0)) | ((z > 1) & (grad < 0))
        return grad.masked_fill(outward, 0.0)


def _check_head_windows(windows, num_heads: int, kernel_size: int, causal: bool, width: str) -> list[list[int]] | None:
    """``head_windows`` as H pairs of ints, checked against the layer's other settings."""
    if windows is None:
        return None
    windows = [list(w) for w in windows]
    if width != "fixed":
        raise ValueError("head_windows needs width='fixed' (the windows replace learned extents)")
    if len(windows) != num_heads or not all(len(w) == 2 and all(type(n) is int and n >= 0 for n in w) for w in windows):
        raise ValueError(f"head_windows must be {num_heads} pairs [left, right] of taps >= 0, got {windows}")
    if causal and any(right for _, right in windows):
        raise ValueError(f"a causal layer's head_windows look left only (right = 0), got {windows}")
    span = max(left for left, _ in windows) + max(right for _, right in windows) + 1
    if span != kernel_size:
        raise ValueError(f"kernel_size must be max left + max right + 1 = {span} for head_windows {windows}, got {kernel_size}")
    return windows


def _window_bias(windows: list[list[int]] | None, padding_l: int, kernel_size: int) -> torch.Tensor | None:
    """[H, K]: 0 on each head's own taps, -inf beyond them; None when every head has every tap."""
    if windows is None:
        return None
    cpu = torch.device("cpu")  # also while a model is built on the meta device
    offsets = torch.arange(kernel_size, device=cpu) - padding_l  # tap j looks at t + offsets[j]
    bounds = torch.tensor(windows, device=cpu)
    inside = (offsets >= -bounds[:, :1]) & (offsets <= bounds[:, 1:])
    if inside.all():
        return None
    return torch.zeros(inside.shape, device=cpu).masked_fill(~inside, float("-inf"))


def extent_fraction(logits: torch.Tensor, activation: str, floor: float = 0.0) -> torch.Tensor:
    """Extents as a fraction of their maximum, in [floor, 1], from width-projection logits (any shape)."""
    if activation == "sigmoid":
        fraction = torch.sigmoid(logits)
    elif torch.is_grad_enabled() and logits.requires_grad:
        fraction = ClampInward.apply(logits)
    else:
        fraction = logits.clamp(0.0, 1.0)
    return fraction if floor == 0 else floor + (1 - floor) * fraction


# Std of the width projection's initial weights: small, so that every token starts near width_init.
INITIAL_WIDTH_WEIGHT_STD = 0.02


class WidthProjection(nn.Linear):
    """Conv inputs [B, T, C] -> extent logits [B, T, H * sides]; :func:`extent_fraction` turns a logit
    into the extent as a fraction of its maximum.

    It keeps ``width_init`` (and how logits become extents) so that whoever (re)initialises it, this
    layer or a transformers model's ``_init_weights``, can start every extent at that fraction: small
    weights and the bias of :attr:`initial_bias`, see :meth:`reset_parameters`.
    """

    def __init__(self, in_features: int, out_features: int, width_init: float, activation: str = "sigmoid", floor: float = 0.0):
        # Before nn.Linear.__init__, which calls reset_parameters.
        self.width_init, self.activation, self.floor = width_init, activation, floor
        super().__init__(in_features, out_features, bias=True)

    @property
    def initial_bias(self) -> float:
        """The logit whose extent is width_init of the maximum: with weights near 0, every extent starts there."""
        share = (self.width_init - self.floor) / (1 - self.floor)
        return math.log(share / (1 - share)) if self.activation == "sigmoid" else share

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=INITIAL_WIDTH_WEIGHT_STD)
        nn.init.constant_(self.bias, self.initial_bias)


class DynamicConv1d(nn.Module):
    """Dynamic convolution over [B, T, C] with generated kernels of adaptive width.

    The layer is fairseq's LightConv/DynamicConv sub-layer: input projection (optionally GLU), the
    convolution, output projection.

    Args:
        hidden_size: channels C.
        num_heads: kernel heads H; C // H channels share one kernel.
        kernel_size: the largest kernel K.
        causal: look only to the left (P = K - 1), for decoders; otherwise centred (P = K // 2).
        kernel: ``"dynamic"`` (a kernel per token) or ``"light"`` (one learned kernel per head).
        width: ``"adaptive"`` (learned left/right extents per token and head) or ``"fixed"`` (all K taps).
        ramp: ramp length rho >= 1 of the soft width mask.
        width_init: initial extents as a fraction of their maximum, in (0, 1) (kept as
            ``self.width_init`` and by the :class:`WidthProjection`, which applies it).
        extent_activation: ``"sigmoid"`` or ``"clamp"``, how a width logit becomes an extent (see the
            module docstring: ``"clamp"`` has no absorbing zero).
        width_floor: the smallest extent as a fraction of its maximum, in [0, width_init).
        glu: input projection to 2C followed by a GLU.
        weight_dropout: DropConnect probability on the normalised taps.
        bias: biases in the input, kernel and output projections (the width projection always has
            one: it sets the initial extents).
        trim: on the CPU, skip the outer taps that are off for every token of a call: they are
            neither generated nor convolved. Finding them reads the largest extents back to the
            host; on CUDA that sync would stall the GPU, so nothing is trimmed there (the triton
            kernels skip all-zero taps per tile of tokens instead), nor under ``torch.compile``.
            ``"tile"``: the same per tile of :data:`TRIM_TILE` tokens of a sequence (adaptive width,
            not when decoding incrementally), so that one wide token keeps the taps of its own tile
            only; tiles that need as many taps are convolved together (see :meth:`convolve_by_tile`).
            ``"token"``: every token gets the taps that most tokens need (the core), generated and
            convolved at once, and only the few wider tokens get theirs beyond it, on their own
            (adaptive width, not when decoding incrementally; see :meth:`convolve_by_token`): for
            the extents models learn, a few wide tokens among many narrow ones, where per-call
            trimming keeps for every token what the widest needs.
        backend: op backend, one of :data:`CONV_BACKENDS` (:data:`dynconv_nlp.ops.BACKENDS` or ``"auto"``).
        head_windows: fixed width only: each head's own window, ``[[left, right], ...]`` (H pairs of
            taps; right = 0 when causal), as :func:`dynconv_nlp.freezing.freeze_widths` makes them
            from an adaptive model's learned extents. ``kernel_size`` is then max left + max right + 1
            and the window sits ``max left`` taps back (an asymmetric window); a head's taps outside
            its own window are off (a constant -inf in its logits). ``None``: every head has all K taps.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        kernel_size: int,
        *,
        causal: bool = False,
        kernel: str = "dynamic",
        width: str = "adaptive",
        ramp: float = 1.0,
        width_init: float = 0.5,
        extent_activation: str = "sigmoid",
        width_floor: float = 0.0,
        glu: bool = False,
        weight_dropout: float = 0.0,
        bias: bool = True,
        trim: bool | str = True,
        backend: str = "auto",
        head_windows: list[list[int]] | None = None,
    ):
        super().__init__()
        _check_settings(hidden_size, num_heads, kernel_size, kernel, width, ramp, width_init, weight_dropout)
        if extent_activation not in EXTENT_ACTIVATIONS:
            raise ValueError(f"extent_activation must be one of {EXTENT_ACTIVATIONS}, got {extent_activation!r}")
        if trim not in TRIM_MODES:
            raise ValueError(f"trim must be one of {TRIM_MODES}, got {trim!r}")
        if not 0.0 <= width_floor < width_init:
            raise ValueError(f"width_floor must be in [0, width_init = {width_init}), got {width_floor}")
        self.hidden_size, self.num_heads, self.kernel_size = hidden_size, num_heads, kernel_size
        self.causal, self.kernel_type, self.width_mode = causal, kernel, width
        self.padding_l = kernel_size - 1 if causal else kernel_size // 2
        self.head_windows = _check_head_windows(head_windows, num_heads, kernel_size, causal, width)
        if self.head_windows is not None:
            self.padding_l = max(left for left, _ in self.head_windows)
        # The taps each head has off (-inf), [H, K]; None where every head has every tap. Made from
        # head_windows on the CPU, not a buffer: checkpoints do not keep it, and transformers builds
        # models on the meta device before loading. One copy per device it runs on.
        self._window_bias = {"cpu": _window_bias(self.head_windows, self.padding_l, kernel_size)}
        self.ramp, self.weight_dropout, self.trim, self.backend = ramp, weight_dropout, trim, backend
        self.glu, self.width_init = glu, width_init
        self.extent_activation, self.width_floor = extent_activation, width_floor

        self.input_proj = nn.Linear(hidden_size, 2 * hidden_size if glu else hidden_size, bias=bias)
        if kernel == "dynamic":
            self.kernel_proj = nn.Linear(hidden_size, num_heads * kernel_size, bias=bias)
        else:
            self.kernel_weight = nn.Parameter(torch.empty(num_heads, kernel_size))
            nn.init.xavier_uniform_(self.kernel_weight)
        if width == "adaptive":
            # One extent per head to the left, and one to the right unless causal.
            self.width_proj = WidthProjection(
                hidden_size, num_heads * (1 if causal else 2), width_init, extent_activation, width_floor
            )
        self.output_proj = nn.Linear(hidden_size, hidden_size, bias=bias)

    def window_bias(self, device: torch.device) -> torch.Tensor:
        """[H, K] on ``device``: 0 on each head's own taps, -inf beyond (``head_windows``)."""
        key = str(device)
        if key not in self._window_bias:
            self._window_bias[key] = self._window_bias["cpu"].to(device)
        return self._window_bias[key]

    @property
    def max_left(self) -> int:
        return self.padding_l

    @property
    def max_right(self) -> int:
        return self.kernel_size - 1 - self.padding_l

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        """Zero decoding state [B, K - 1, C]: the zero padding before the first token."""
        return torch.zeros(batch_size, self.kernel_size - 1, self.hidden_size, device=device, dtype=dtype)

    @staticmethod
    def reorder_state(conv_state: torch.Tensor, beam_idx: torch.Tensor) -> torch.Tensor:
        """Select the states [B, K - 1, C] of the surviving beams."""
        return conv_state.index_select(0, beam_idx.to(conv_state.device))

    def extents(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left and right extents [B, T, H] (at least float32) from conv inputs u [B, T, C]."""
        B, T, _ = u.shape
        if self.width_mode == "fixed":
            full = u.new_ones(B, T, self.num_heads, dtype=_math_dtype(u))
            if self.head_windows is not None:
                windows = full.new_tensor(self.head_windows)  # [H, 2]
                return full * windows[:, 0], full * windows[:, 1]
            return full * self.max_left, full * self.max_right
        sides = 1 if self.causal else 2
        logits = self.width_proj(u).to(_math_dtype(u))
        gates = extent_fraction(logits, self.extent_activation, self.width_floor).reshape(B, T, self.num_heads, sides)
        left = gates[..., 0] * self.max_left
        right = gates[..., 1] * self.max_right if not self.causal else torch.zeros_like(left)
        return left, right

    def reach(self, extents: torch.Tensor) -> torch.Tensor:
        """The farthest tap that extents (any shape) switch on: d < e + ramp <=> d <= ceil(e + ramp) - 1,
        in the same float arithmetic as :func:`ramp_mask`, so that trimming to it is exact."""
        return torch.ceil(extents + self.ramp) - 1

    def active_taps(self, left: torch.Tensor, right: torch.Tensor, attention_mask: torch.Tensor | None = None) -> range:
        """The taps that are on for at least one real token and head, given extents [B, T, H].

        A tap at distance d is on where d < extent + ramp (:func:`ramp_mask`), so the largest extents
        decide. Padding (``attention_mask`` [B, T] = 0) does not count: its outputs are never read,
        and its extents, computed from zeroed inputs, would otherwise keep every tap. Reads two
        numbers back to the host.
        """
        P = self.padding_l
        if self.width_mode == "fixed":
            return range(self.kernel_size)
        left, right = _without_padding(left, right, attention_mask)
        if left.numel() == 0:
            return range(P, P + 1)
        reach = self.reach(torch.stack([left.max(), right.max()]))
        n_left, n_right = (int(n) for n in reach.tolist())
        return range(P - min(n_left, self.max_left), P + min(n_right, self.max_right) + 1)

    def taps(self, u: torch.Tensor, left: torch.Tensor, right: torch.Tensor, tap_range: range | None = None) -> torch.Tensor:
        """Normalised taps [B, T, H, K'] (at least float32) from conv inputs u [B, T, C] and extents [B, T, H].

        ``tap_range`` (default all K) selects the taps to compute; taps outside it must be off for
        every token (see :meth:`active_taps`), so that the softmax is unchanged.
        """
        return self.normalise(self.tap_logits(u, left, right, tap_range))

    def normalise(self, logits: torch.Tensor) -> torch.Tensor:
        """Taps from their logits [..., K']: softmax over the taps, then DropConnect."""
        return F.dropout(torch.softmax(logits, dim=-1), self.weight_dropout, self.training)

    def tap_logits(self, u: torch.Tensor, left: torch.Tensor, right: torch.Tensor, tap_range: range | None = None) -> torch.Tensor:
        """The logits [B, T, H, K'] of :meth:`taps`, -inf where a tap is off."""
        B, T, _ = u.shape
        H, K = self.num_heads, self.kernel_size
        tap_range = range(K) if tap_range is None else tap_range
        taps = slice(tap_range.start, tap_range.stop)
        if self.kernel_type == "dynamic":
            # Generate only the kept taps: trimming saves their share of this projection too.
            proj_weight = self.kernel_proj.weight.view(H, K, -1)[:, taps].flatten(0, 1)
            proj_bias = self.kernel_proj.bias
            proj_bias = proj_bias.view(H, K)[:, taps].flatten() if proj_bias is not None else None
            logits = F.linear(u, proj_weight, proj_bias).to(_math_dtype(u)).view(B, T, H, len(tap_range))
        else:
            logits = self.kernel_weight[:, taps].to(_math_dtype(u)).expand(B, T, H, len(tap_range))
        if self._window_bias["cpu"] is not None:
            logits = logits + self.window_bias(logits.device)[:, taps].to(logits.dtype)
        if self.width_mode == "adaptive":
            mask = ramp_mask(left, right, K, self.padding_l, self.ramp, tap_range)
            # log(0) = -inf switches a tap off exactly; the clamp keeps log's gradient finite there.
            logits = torch.where(mask > 0, logits + torch.log(mask.clamp_min(1e-30)), float("-inf"))
        return logits

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        conv_state: torch.Tensor | None = None,
        use_cache: bool = False,
        return_conv_inputs: bool = False,
    ) -> DynamicConvOutput:
        """
        Args:
            hidden_states: [B, T, C].
            attention_mask: [B, T], 1 for tokens and 0 for padding; padded positions contribute nothing.
            conv_state: [B, K - 1, C] from the previous step (causal only). Giving it means decoding
                incrementally: the output carries the next state.
            use_cache: decode incrementally from zeros when no ``conv_state`` is given, and return
                the next state to feed the next step (one or several tokens per step).
            return_conv_inputs: when decoding incrementally, return the new tokens' conv inputs
                (``conv_inputs``) instead of the next state, for a cache that appends them to its own
                buffer: building the next state copies K - 1 rows a step, which at K = 127 costs more
                than the step's convolution.

        Returns:
            :class:`DynamicConvOutput`.
        """
        incremental = use_cache or conv_state is not None
        if incremental and not self.causal:
            raise ValueError("incremental decoding (conv_state / use_cache) needs a causal DynamicConv1d")
        u = self.input_proj(hidden_states)
        if self.glu:
            u = F.glu(u, dim=-1)
        if attention_mask is not None:
            # masked_fill, not a product: NaN or inf in padded rows must not leak through 0 * x.
            u = u.masked_fill(~attention_mask.bool().unsqueeze(-1), 0.0)

        left, right = self.extents(u)
        by = {"tile": self.convolve_by_tile, "token": self.convolve_by_token}.get(self.trim)
        if by is not None and self.width_mode == "adaptive" and not incremental and _can_trim(u):
            return DynamicConvOutput(
                hidden_states=self.output_proj(by(u, left, right, attention_mask)),
                left_extent=left,
                right_extent=right,
                width_penalty=self._width_penalty(left, right, attention_mask),
            )
        tap_range = range(self.kernel_size)
        if self.trim and _can_trim(u):  # the result is the same either way
            tap_range = self.active_taps(left, right, attention_mask)
        weight = self.taps(u, left, right, tap_range)
        padding_l = self.padding_l - tap_range.start

        new_state = None
        if incremental:
            if conv_state is None:
                conv_state = self.init_state(u.shape[0], u.device, u.dtype)
            conv_state = conv_state.to(u.dtype)
            T = u.shape[1]
            if not return_conv_inputs:  # the last K - 1 rows of [state, new tokens]
                new_state = torch.cat([conv_state[:, T:], u[:, max(T - (self.kernel_size - 1), 0) :]], dim=1)
        if incremental and 0 < u.shape[1] < self.kernel_size:
            # Only the state rows that the kept taps reach: [B, K - 1 - start + T, C].
            context = torch.cat([conv_state[:, tap_range.start :], u], dim=1)
            y = self.convolve_new_tokens(context, weight).to(u.dtype)
        elif incremental:
            # Many new tokens (a prompt): the op over [state, new tokens], the state rows only as left
            # context; their K - 1 outputs are wasted, but the backends never hold T x K' windows.
            context = torch.cat([conv_state, u], dim=1)  # [B, K - 1 + T, C]
            weight = torch.cat([weight.new_zeros(weight.shape[0], self.kernel_size - 1, *weight.shape[2:]), weight], 1)
            y = dynamic_conv1d(context, weight.to(u.dtype), padding_l, backend=self.backend, zero_taps_inactive=True)
            y = y[:, self.kernel_size - 1 :]
        else:
            # Zero taps are off (masked softmax, dropout): their kernel gradient would be multiplied by 0.
            y = dynamic_conv1d(u, weight.to(u.dtype), padding_l, backend=self.backend, zero_taps_inactive=True)
        return DynamicConvOutput(
            hidden_states=self.output_proj(y),
            left_extent=left,
            right_extent=right,
            width_penalty=self._width_penalty(left, right, attention_mask),
            conv_state=new_state,
            conv_inputs=u if incremental and return_conv_inputs else None,
        )

    @staticmethod
    def convolve_new_tokens(context: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """A decoding step's outputs [B, T, C] (in ``weight``'s dtype): the causal convolution of the last T
        rows of ``context`` [B, K' - 1 + T, C] (the state rows that the kept taps reach, then the new
        tokens) with taps [B, T, H, K'], which end at the token itself.

        Only the new tokens' windows are read: the op over the whole context would also compute an
        output for each of the K' - 1 state rows, K' times the work of a one-token step.
        """
        B, T, H, width = weight.shape
        windows = context.unfold(1, width, 1)  # [B, T, C, K'], a view: window t holds token t's taps
        windows = windows.reshape(B, T, H, -1, width).to(weight.dtype)  # R = C // H channels share a head
        return torch.einsum("bthrk,bthk->bthr", windows, weight).reshape(B, T, -1)

    def token_reach(self, left: torch.Tensor, right: torch.Tensor, attention_mask: torch.Tensor | None):
        """Taps each token needs to its left and right, [B, T] each (int64): the farthest tap any of its
        heads has on (as :meth:`active_taps`); 0 for padding."""
        left, right = _without_padding(left, right, attention_mask)
        reach = self.reach(torch.stack([left.amax(-1), right.amax(-1)])).clamp_min(0)  # [2, B, T]
        reach = torch.minimum(reach, reach.new_tensor([self.max_left, self.max_right]).view(2, 1, 1)).long()
        return reach[0], reach[1]

    def convolve_by_token(
        self, u: torch.Tensor, left: torch.Tensor, right: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The convolution of conv inputs u [B, T, C] with each token's kernel generated and applied only
        for the taps it needs: y [B, T, C] as the untrimmed layer's.

        The core, the taps that :data:`TRIM_TOKEN_CORE` of the real tokens need on each side
        (:meth:`token_reach`), is generated for every token in one matmul and applied in one call of
        the op. The wide tokens, those that need more, get their taps beyond the core generated on
        their own (up to the widest token's), normalised with their core, and applied as a list of
        taps, each wide token's own only (:func:`dynconv_nlp.ops.gathered.gathered_conv`). Reads the
        core and the wide tokens back to the host.
        """
        B, T, C = u.shape
        H, P = self.num_heads, self.padding_l
        reach_left, reach_right = self.token_reach(left, right, attention_mask)
        real = reach_left.new_ones(B, T, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        reach = torch.stack([reach_left[real], reach_right[real]]).float()  # [2, real tokens]
        if reach.shape[1] == 0:
            reach = reach.new_zeros(2, 1)
        core = reach.quantile(TRIM_TOKEN_CORE, dim=1, interpolation="higher")
        core_left, core_right, widest_left, widest_right = (int(n) for n in torch.cat([core, reach.amax(1)]).tolist())
        logits = self.tap_logits(u, left, right, range(P - core_left, P + core_right + 1)).reshape(B * T, H, -1)
        weight = self.normalise(logits)
        wide = ((reach_left > core_left) | (reach_right > core_right)).flatten().nonzero().squeeze(1)
        if len(wide):
            # The wide tokens' taps beyond the core, normalised together with their core taps.
            u_wide, left_wide, right_wide = (t.reshape(1, B * T, -1)[:, wide] for t in (u, left, right))
            before = self.tap_logits(u_wide, left_wide, right_wide, range(P - widest_left, P - core_left))[0]
            after = self.tap_logits(u_wide, left_wide, right_wide, range(P + core_right + 1, P + widest_right + 1))[0]
            joint = self.normalise(torch.cat([before, logits[wide], after], dim=-1))
            n_before, n_core = before.shape[-1], logits.shape[-1]
            weight = weight.index_put((wide,), joint[..., n_before : n_before + n_core])
            outer = torch.cat([joint[..., :n_before], joint[..., n_before + n_core :]], dim=-1)  # [n, H, k]
        weight = weight.view(B, T, H, -1).to(u.dtype)
        y = dynamic_conv1d(u, weight, core_left, backend=self.backend, zero_taps_inactive=True).reshape(B * T, C)
        if len(wide):
            # Their taps beyond the core, each wide token's own (within its reach and the sequence) as
            # a list: no token is given a tap it does not use.
            offsets = [*range(-widest_left, -core_left), *range(core_right + 1, widest_right + 1)]
            offsets = torch.tensor(offsets, device=u.device)
            positions = (wide % T).unsqueeze(1) + offsets  # [n, k]
            needed = torch.where(offsets < 0, -offsets <= reach_left.flatten()[wide].unsqueeze(1),
                                 offsets <= reach_right.flatten()[wide].unsqueeze(1))
            token, tap = (needed & (positions >= 0) & (positions < T)).nonzero(as_tuple=True)
            rows = wide[token] - wide[token] % T + positions[token, tap]
            outer = gathered_conv(u.reshape(B * T, C), rows, token, outer[token, :, tap], len(wide))
            y = y.index_add(0, wide, outer.to(y.dtype))
        return y.view(B, T, C)

    def tile_reach(self, left: torch.Tensor, right: torch.Tensor, attention_mask: torch.Tensor | None, tile: int):
        """Taps each tile of ``tile`` tokens needs to its left and right, [B, n_tiles] each (host ints, as
        lists), from extents [B, T, H]: the farthest tap any of its real tokens and heads has on
        (as :meth:`active_taps`), rounded up to 0, 1, 2, 4, 8, ... so that few tiles differ."""
        B, T, H = left.shape
        n_tiles = -(-T // tile)
        left, right = _without_padding(left, right, attention_mask)
        extents = F.pad(torch.stack([left, right]), (0, 0, 0, n_tiles * tile - T)).view(2, B, n_tiles, tile * H)
        reach = self.reach(extents.amax(-1)).clamp_min(0)
        # Round up to a power of two (0 stays 0), capped at the side's largest reach.
        reach = torch.where(reach > 0, torch.exp2(torch.ceil(torch.log2(reach.clamp_min(1)))), reach)
        limits = reach.new_tensor([self.max_left, self.max_right]).view(2, 1, 1)
        reach_left, reach_right = torch.minimum(reach, limits).long().tolist()
        return reach_left, reach_right

    def convolve_by_tile(
        self, u: torch.Tensor, left: torch.Tensor, right: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The convolution of conv inputs u [B, T, C] with each tile of :data:`TRIM_TILE` tokens given
        only the taps its tokens use (:meth:`tile_reach`): y [B, T, C] as the untrimmed layer's.

        Tiles that need the same taps go together: their windows (the tile and the context its taps
        reach) are gathered into a batch, their kernels generated for those taps alone, each tile
        convolved as one band matmul (``band`` backend's formulation, whatever ``backend`` says:
        outputs for the tile's own tokens only) and the outputs put back in place.
        """
        B, T, C = u.shape
        H, L, P = self.num_heads, TRIM_TILE, self.padding_l
        n_tiles = -(-T // L)
        reach_left, reach_right = self.tile_reach(left, right, attention_mask, L)
        groups: dict[tuple[int, int], list[int]] = {}
        for b in range(B):
            for i in range(n_tiles):
                groups.setdefault((reach_left[b][i], reach_right[b][i]), []).append(b * n_tiles + i)
        # Zero context on both sides (as the op's padding), and the sequences cut into tiles.
        padded = F.pad(u, (0, 0, self.max_left, n_tiles * L - T + self.max_right))
        tiles_u = F.pad(u, (0, 0, 0, n_tiles * L - T)).view(B * n_tiles, L, C)
        tiles_left = F.pad(left, (0, 0, 0, n_tiles * L - T)).view(B * n_tiles, L, H)
        tiles_right = F.pad(right, (0, 0, 0, n_tiles * L - T)).view(B * n_tiles, L, H)
        outputs, order = [], []
        for (n_left, n_right), members in groups.items():
            index = torch.tensor(members, device=u.device)
            # Rows of tile (b, i) in `padded`: from its first token n_left back, to its last n_right on.
            starts = (index % n_tiles) * L + self.max_left - n_left
            rows = starts.unsqueeze(1) + torch.arange(L + n_left + n_right, device=u.device)
            windows = padded[(index // n_tiles).unsqueeze(1), rows]  # [n, L + n_left + n_right, C]
            windows = windows.view(len(members), -1, H, C // H).transpose(1, 2)
            tap_range = range(P - n_left, P + n_right + 1)
            weight = self.taps(tiles_u[index], tiles_left[index], tiles_right[index], tap_range).to(u.dtype)
            outputs.append(band_tile_outputs(windows, weight).transpose(1, 2).reshape(len(members), L, C))
            order.append(index)
        y = torch.cat(outputs)[torch.argsort(torch.cat(order))]
        return y.view(B, n_tiles * L, C)[:, :T]

    def _width_penalty(self, left, right, attention_mask) -> torch.Tensor:
        """[B]: each sequence's mean normalised width over its real tokens and heads."""
        if self.width_mode == "fixed" or self.kernel_size == 1:
            return left.new_zeros(left.shape[0])
        width = (left + right) / (self.kernel_size - 1)
        if attention_mask is None:
            return width.mean(dim=(1, 2))
        mask = attention_mask.to(width.dtype).unsqueeze(-1).expand_as(width)
        return (width * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp_min(1.0)


def _without_padding(left: torch.Tensor, right: torch.Tensor, attention_mask: torch.Tensor | None):
    """Extents [B, T, H] with padding's (``attention_mask`` [B, T] = 0) set to 0: padded outputs are never
    read, so their extents, computed from zeroed inputs, must not keep taps."""
    if attention_mask is None:
        return left, right
    padding = ~attention_mask.bool().unsqueeze(-1)
    return left.masked_fill(padding, 0.0), right.masked_fill(padding, 0.0)


def _can_trim(u: torch.Tensor) -> bool:
    """Trimming reads extents back to the host: not on CUDA (a sync) nor under torch.compile (a graph break)."""
    return not u.is_cuda and not torch.compiler.is_compiling()


def _math_dtype(u: torch.Tensor) -> torch.dtype:
    """Softmax and width math run in float32 under half precision (float64 stays float64)."""
    return torch.promote_types(u.dtype, torch.float32)


def _check_settings(hidden_size, num_heads, kernel_size, kernel, width, ramp, width_init, weight_dropout):
    if num_heads < 1 or hidden_size % num_heads != 0:
        raise ValueError(f"num_heads = {num_heads} must be >= 1 and divide hidden_size = {hidden_size}")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    if kernel not in KERNEL_TYPES:
        raise ValueError(f"kernel must be one of {KERNEL_TYPES}, got {kernel!r}")
    if width not in WIDTH_MODES:
        raise ValueError(f"width must be one of {WIDTH_MODES}, got {width!r}")
    if not ramp >= 1.0:
        raise ValueError(f"ramp must be >= 1, got {ramp}")
    if not 0.0 < width_init < 1.0:
        raise ValueError(f"width_init must be in (0, 1), got {width_init}")
    if not 0.0 <= weight_dropout < 1.0:
        raise ValueError(f"weight_dropout must be in [0, 1), got {weight_dropout}")
