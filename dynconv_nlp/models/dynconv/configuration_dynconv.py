"""DynConv model configuration."""

import dataclasses
import json
import re
import warnings
from collections.abc import Iterator

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ...layers.blocks import ACTIVATIONS
from ...layers.dynamic_conv import CONV_BACKENDS, EXTENT_ACTIVATIONS, KERNEL_TYPES, TRIM_MODES, WIDTH_MODES
from ...layers.width_budget import STEP_SIZE

POSITION_EMBEDDING_TYPES = ("none", "sinusoidal", "learned")
CLASSIFIER_POOLINGS = ("mean", "first")
# The settings that take one of a few values, and those values: the layers' own tuples where a layer
# takes the setting (dynconv_nlp.layers), so that the config accepts exactly what the layers do.
CHOICES = {
    "kernel_type": KERNEL_TYPES,
    "width_mode": WIDTH_MODES,
    "position_embedding_type": POSITION_EMBEDDING_TYPES,
    "classifier_pooling": CLASSIFIER_POOLINGS,
    "hidden_act": ACTIVATIONS,
    "conv_backend": CONV_BACKENDS,
    "conv_trim": TRIM_MODES,
}
# The floor of "clamp" extents when none is given: the next tap stays partly on, so a collapsed
# width still gets a gradient from the task (at 0, the ramp switches that tap off exactly).
CLAMP_WIDTH_FLOOR = 0.01
# The per-layer settings, each with the setting that counts its stack's layers. One value given
# stands for every layer; the config stores one entry per layer.
PER_LAYER = {
    "kernel_size": "encoder_layers",
    "decoder_kernel_size": "decoder_layers",
    "width_budget": "encoder_layers",
    "decoder_width_budget": "decoder_layers",
}
# A comma starts a new setting only where ``name=`` follows, so that lists may hold commas.
_SETTING_SEPARATOR = re.compile(r",(?=\s*\w+\s*=)")


def fairseq_kernel_sizes(num_layers: int) -> list[int]:
    """fairseq's LightConv/DynamicConv schedule: 3, 7, 15, then 31 for every further layer."""
    return [min(31, 2 ** (i + 2) - 1) for i in range(num_layers)]


def read_settings(text: str) -> Iterator[tuple[str, str | None, object]]:
    """The settings of ``"kernel_size=[7,15],width_mode=fixed"`` (``--config_overrides``), one at a time:
    ``(item, name, value)`` with the item as written, its name (None where the item is not
    ``name=value``) and its value, read as JSON where it can be (numbers, lists, true/false/null),
    else the string. The one reader of override strings: :meth:`DynConvConfig.update_from_string`
    and ``dynconv_nlp.distillation.mirror`` each say which names they take."""
    for item in _SETTING_SEPARATOR.split(text):
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = value.strip()
        yield item, name if sep and name.isidentifier() else None, value


@strict
class DynConvConfig(PreTrainedConfig):
    r"""
    Configuration of the DynConv models: stacks of dynamic convolutions whose kernels are generated
    per token and whose left/right width is learned per token (``dynconv_nlp.layers.DynamicConv1d``).

    The encoder serves the encoder-only models (``DynConvModel`` and its classification and masked-LM
    heads); ``DynConvForConditionalGeneration`` adds a causal decoder with cross-attention.

    The config is complete once made, however it is made (the constructor, ``from_dict``,
    ``from_pretrained(path, width_budget=0.25)``, ``update_from_string``, which ``--config_overrides``
    calls): a per-layer setting given once holds one entry per layer, the settings left unset are
    filled in, and the values are checked (``ValueError`` names the first one out of range). The
    models read it as it is and never change it.

    Args:
        vocab_size (`int`, *optional*, defaults to 30522):
            Tokens in the vocabulary.
        hidden_size (`int`, *optional*, defaults to 512):
            Model width C.
        encoder_layers (`int`, *optional*, defaults to 6):
            Encoder blocks (``num_hidden_layers`` is the same value, and may be given instead).
        decoder_layers (`int`, *optional*, defaults to 6):
            Decoder blocks (encoder-decoder model only).
        intermediate_size (`int`, *optional*, defaults to 2048):
            Width of the feed-forward layers.
        num_attention_heads (`int`, *optional*, defaults to 8):
            Kernel heads H of every convolution (C / H channels share a kernel) and heads of the
            decoder's cross-attention, as in fairseq.
        kernel_size (`int` or `list[int]`, *optional*):
            The largest kernel of each encoder layer: one int for all, or one per layer. Defaults to
            fairseq's 3, 7, 15, 31, 31, ... (An attention layer's entry is not used.)
        decoder_kernel_size (`int` or `list[int]`, *optional*):
            The same for the decoder layers.
        kernel_type (`str`, *optional*, defaults to `"dynamic"`):
            ``"dynamic"`` (a kernel generated per token, DynamicConv) or ``"light"`` (one learned
            kernel per layer and head, LightConv).
        width_mode (`str`, *optional*, defaults to `"adaptive"`):
            ``"adaptive"`` (learned left/right extents per token and head) or ``"fixed"``.
        ramp (`float`, *optional*, defaults to 1.0):
            Length rho >= 1 of the soft ramp that switches taps off beyond the extents.
        width_init (`float`, *optional*, defaults to 0.5):
            Initial extents as a fraction of their maximum, in (0, 1).
        width_penalty_coef (`float`, *optional*, defaults to 0.0):
            lambda; the models add ``lambda * width_penalty`` to the loss.
        width_budget (`float` or `list[float]`, *optional*):
            The largest mean width each encoder layer may keep in training, as a share of K - 1 in
            (width_floor, 1]: one value for all or one per layer. A Lagrange multiplier per layer
            enforces it (``dynconv_nlp.layers.WidthBudget``). Defaults to no budget.
        decoder_width_budget (`float` or `list[float]`, *optional*):
            The same for the decoder layers.
        width_budget_warmup_steps (`int`, *optional*):
            Optimizer steps over which the budget falls from full width; 0: the budget holds from the
            first step. Defaults to ``WARMUP_SHARE`` (30%) of the run's steps
            (``dynconv_nlp.layers.width_budget``), set by the training loop.
        width_budget_step_size (`float`, *optional*, defaults to 0.01):
            The multipliers' dual ascent step (``dynconv_nlp.layers.width_budget.STEP_SIZE``).
        extent_activation (`str`, *optional*):
            How a width logit becomes an extent: ``"sigmoid"`` or ``"clamp"`` (no absorbing zero, see
            ``dynconv_nlp.layers.dynamic_conv``). Defaults to ``"clamp"`` with a width budget, else
            ``"sigmoid"`` (what models before it used), however the budget is set;
            :attr:`resolved_extent_activation` is the one in use. A saved model records the one its
            weights were trained with. A budget with ``"sigmoid"`` named gets a warning: its zero
            width absorbs (no gradient), so a budget can collapse it.
        width_floor (`float`, *optional*):
            The smallest extent, as a share of its maximum. Defaults to 0.01 with ``"clamp"``, else 0
            (:attr:`resolved_width_floor`).
        attention_layers (`list[int]`, *optional*, defaults to `[]`):
            Encoder layers (0-based indices) that keep standard multi-head self-attention
            (``scaled_dot_product_attention``, padding masked; ``num_attention_heads`` heads,
            ``attention_probs_dropout_prob``) instead of a convolution: a hybrid encoder. Their outputs
            report no widths and a zero width penalty. By default every layer convolves.
        head_windows (`list[list[list[int]] | None]`, *optional*):
            Per encoder layer, ``None`` or each head's own window ``[[left, right], ...]`` in taps, for
            ``width_mode="fixed"``: a model made by ``freeze_widths`` from an adaptive one
            (``dynconv_nlp.freezing``). That layer's ``kernel_size`` is max left + max right + 1.
            Defaults to every head of every layer having all K taps.
        decoder_head_windows (`list[list[list[int]] | None]`, *optional*):
            The same for the decoder layers (left only: right = 0).
        glu (`bool`, *optional*, defaults to `True`):
            GLU input projection in each convolution sub-layer.
        weight_dropout (`float`, *optional*, defaults to 0.1):
            DropConnect probability on the normalised taps.
        conv_backend (`str`, *optional*, defaults to `"auto"`):
            The op backend (``dynconv_nlp.ops.BACKENDS``, or ``"auto"``).
        conv_trim (`bool` or `str`, *optional*, defaults to `True`):
            On the CPU, skip the taps no token uses: per call (``True``), per tile of 32 tokens
            (``"tile"``), per bucket of tokens with the same reach (``"token"``) or never (``False``);
            the outputs are the same (``DynamicConv1d``'s ``trim``).
        hidden_act (`str`, *optional*, defaults to `"relu"`):
            Activation of the feed-forward layers: ``"relu"``, ``"gelu"``, ``"gelu_new"`` (GELU's tanh
            approximation) or ``"silu"``.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on the output of every sub-layer and on the embeddings.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on the attention probabilities (cross-attention and the self-attention of
            ``attention_layers``).
        activation_dropout (`float`, *optional*, defaults to 0.0):
            Dropout after the feed-forward activation.
        position_embedding_type (`str`, *optional*, defaults to `"sinusoidal"`):
            ``"none"``, ``"sinusoidal"`` or ``"learned"``.
        max_position_embeddings (`int`, *optional*, defaults to 1024):
            Positions a ``"learned"`` table holds.
        position_offset (`int`, *optional*, defaults to 0):
            The table row of the first token (RoBERTa's tables start at pad_token_id + 1).
        clamp_positions (`bool`, *optional*, defaults to `False`):
            Tokens beyond a ``"learned"`` table take its last row instead of raising. The
            convolutions see relative positions only, so a model whose table came from a Transformer
            (see ``scripts/distill_to_dynconv.py``) can read inputs longer than the Transformer could.
        embedding_size (`int`, *optional*):
            Width of the token, position and token-type embeddings. Defaults to ``hidden_size``; a
            different width is projected to ``hidden_size``, as ELECTRA does.
        embedding_layer_norm (`bool`, *optional*, defaults to `False`):
            A layer norm on the summed embeddings, as BERT (before the dropout).
        type_vocab_size (`int`, *optional*, defaults to 2):
            Segment (token type) embeddings of the encoder, 0 for none.
        default_token_type (`int`, *optional*):
            The segment of every token when no ``token_type_ids`` are given (BERT: 0). Defaults to
            adding no token-type embedding then.
        normalize_before (`bool`, *optional*, defaults to `False`):
            Pre-norm blocks (and a final layer norm) instead of post-norm.
        scale_embedding (`bool`, *optional*, defaults to `True`):
            Multiply token embeddings by sqrt(hidden_size), as fairseq.
        layer_norm_eps (`float`, *optional*, defaults to 1e-05):
            Epsilon of the layer norms.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the normal initialisation of linear and embedding weights.
        classifier_pooling (`str`, *optional*, defaults to `"mean"`):
            How sequence classification pools the tokens: ``"mean"`` over real tokens (a convolution's
            first token only sees its neighbourhood) or ``"first"``.
        classifier_dropout (`float`, *optional*):
            Dropout in the classification heads. Defaults to ``hidden_dropout_prob``.
        use_cache (`bool`, *optional*, defaults to `True`):
            Return the decoder's cache (conv states and cross-attention keys/values).
        pad_token_id (`int`, *optional*, defaults to 0):
            Padding token.
        bos_token_id (`int`, *optional*, defaults to 1):
            Beginning-of-sequence token.
        eos_token_id (`int` or `list[int]`, *optional*, defaults to 2):
            End-of-sequence token(s).
        decoder_start_token_id (`int`, *optional*):
            The first decoder input. Defaults to ``bos_token_id``.
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Tie the output embeddings to the input ones.

    Example:

    ```python
    >>> from transformers import AutoConfig
    >>> import dynconv_nlp  # registers "dynconv"
    >>> config = AutoConfig.for_model("dynconv", vocab_size=8000, hidden_size=256, num_hidden_layers=4)
    >>> config.kernel_size
    [3, 7, 15, 31]
    ```"""

    model_type = "dynconv"
    attribute_map = {"num_hidden_layers": "encoder_layers"}
    keys_to_ignore_at_inference = ["cache"]

    vocab_size: int = 30522
    hidden_size: int = 512
    encoder_layers: int = 6
    decoder_layers: int = 6
    intermediate_size: int = 2048
    num_attention_heads: int = 8
    kernel_size: int | list[int] | None = None
    decoder_kernel_size: int | list[int] | None = None
    kernel_type: str = "dynamic"
    width_mode: str = "adaptive"
    ramp: float | int = 1.0
    width_init: float = 0.5
    width_penalty_coef: float | int = 0.0
    width_budget: float | int | list[float | int] | None = None
    decoder_width_budget: float | int | list[float | int] | None = None
    width_budget_warmup_steps: int | None = None
    width_budget_step_size: float | int = STEP_SIZE
    extent_activation: str | None = None
    width_floor: float | int | None = None
    attention_layers: list[int] | None = None
    head_windows: list[list[list[int]] | None] | None = None
    decoder_head_windows: list[list[list[int]] | None] | None = None
    glu: bool = True
    weight_dropout: float | int = 0.1
    conv_backend: str = "auto"
    conv_trim: bool | str = True
    hidden_act: str = "relu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    activation_dropout: float | int = 0.0
    position_embedding_type: str = "sinusoidal"
    max_position_embeddings: int = 1024
    position_offset: int = 0
    clamp_positions: bool = False
    embedding_size: int | None = None
    embedding_layer_norm: bool = False
    type_vocab_size: int = 2
    default_token_type: int | None = None
    normalize_before: bool = False
    scale_embedding: bool = True
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    classifier_pooling: str = "mean"
    classifier_dropout: float | int | None = None
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    decoder_start_token_id: int | None = None
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        # num_hidden_layers=... arrives here as an extra keyword; apply it before the per-layer lists.
        if "num_hidden_layers" in kwargs:
            self.encoder_layers = kwargs.pop("num_hidden_layers")
        self.fill_in()
        self.check_values()
        super().__post_init__(**kwargs)

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """``PreTrainedConfig.from_dict`` (what ``from_pretrained`` calls), but the settings of this
        config among ``kwargs`` (``from_pretrained(path, width_budget=0.25)``) are made with the rest
        of the config, not set on it afterwards: they are filled in and checked as the others are."""
        own = {f.name for f in dataclasses.fields(cls)} - {f.name for f in dataclasses.fields(PreTrainedConfig)}
        settings = {name: kwargs.pop(name) for name in list(kwargs) if name in own or name in cls.attribute_map}
        return super().from_dict({**config_dict, **settings}, **kwargs)

    def update_from_string(self, update_str: str):
        """``PreTrainedConfig.update_from_string`` (what ``--config_overrides`` calls) for every setting
        of this config: values are read as JSON where they can be (numbers, lists, true/false/null),
        else kept as strings (:func:`read_settings`), so ``kernel_size=[7,15],width_budget=0.25``
        works; then the config is filled in and checked as a new one is. A budget set here gets the
        same extent activation, floor and warm-in as one given to the constructor."""
        settings = {}
        for item, name, value in read_settings(update_str):
            if name is None or not hasattr(self, name):
                raise ValueError(f"{item!r} is not name=value with a setting of this config")
            settings[name] = value
        for name, value in settings.items():
            setattr(self, name, value)
        self.fill_in()
        self.check_values()

    def fill_in(self) -> None:
        """Write out what the settings left unset (None) or given once for every layer stand for, so
        that the config says exactly what each layer has: one entry per layer of each per-layer
        setting (:meth:`expand_per_layer`), no attention layers, token embeddings as wide as the
        model, and decoding from ``bos_token_id``."""
        self.expand_per_layer()
        if self.attention_layers is None:
            self.attention_layers = []
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size
        if self.decoder_start_token_id is None:
            self.decoder_start_token_id = self.bos_token_id

    def expand_per_layer(self) -> None:
        """One value of a per-layer setting (:data:`PER_LAYER`) becomes a list with one entry per
        layer; an unset kernel size becomes fairseq's schedule, an unset budget stays None. A config
        is expanded when it is made: calling this again changes nothing."""
        for name, count in PER_LAYER.items():
            value, layers = getattr(self, name), getattr(self, count)
            if value is None and name.endswith("kernel_size"):
                setattr(self, name, fairseq_kernel_sizes(layers))
            elif isinstance(value, (int, float)):
                setattr(self, name, [value] * layers)
            elif value is not None:
                setattr(self, name, list(value))  # the config's own list, not the caller's

    @property
    def budgeted(self) -> bool:
        """Whether a width budget is set, on the encoder or the decoder."""
        return self.width_budget is not None or self.decoder_width_budget is not None

    @property
    def resolved_extent_activation(self) -> str:
        """The extent activation in use: the one named, else ``"clamp"`` with a budget, else ``"sigmoid"``."""
        if self.extent_activation is not None:
            return self.extent_activation
        return "clamp" if self.budgeted else "sigmoid"

    @property
    def resolved_width_floor(self) -> float:
        """The extent floor in use: the one named, else 0.01 with ``"clamp"``, else 0."""
        if self.width_floor is not None:
            return self.width_floor
        return CLAMP_WIDTH_FLOOR if self.resolved_extent_activation == "clamp" else 0.0

    def record_width_settings(self) -> None:
        """Name the extent activation and floor in use (what a saved model's width projections were
        trained with), so that a budget added when it is loaded again does not change them."""
        if self.width_mode == "adaptive":
            self.extent_activation, self.width_floor = self.resolved_extent_activation, self.resolved_width_floor

    @property
    def conv_layers(self) -> list[int]:
        """The encoder layers that convolve (every layer not in ``attention_layers``), in order."""
        return [i for i in range(self.encoder_layers) if i not in self.attention_layers]

    def check_values(self):
        """Raise ``ValueError`` naming the first setting that is out of range. Run once wherever a
        config is made or changed as a whole (:meth:`__post_init__`, :meth:`update_from_string`,
        ``dynconv_nlp.freezing``); not again by ``validate()``, which runs transformers' own checks."""
        for name in ("vocab_size", "hidden_size", "encoder_layers", "intermediate_size", "num_attention_heads", "embedding_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.decoder_layers < 0:
            raise ValueError(f"decoder_layers must be >= 0, got {self.decoder_layers}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"num_attention_heads = {self.num_attention_heads} must divide hidden_size = {self.hidden_size}"
            )
        for name, layers in (("kernel_size", self.encoder_layers), ("decoder_kernel_size", self.decoder_layers)):
            sizes = getattr(self, name)
            if not isinstance(sizes, list) or len(sizes) != layers:
                raise ValueError(f"{name} must list one kernel size per layer ({layers}), got {sizes}")
            if any(k < 1 for k in sizes):
                raise ValueError(f"every {name} must be >= 1, got {sizes}")
        layers = self.attention_layers
        if (not isinstance(layers, list) or not all(type(i) is int and 0 <= i < self.encoder_layers for i in layers)
                or len(set(layers)) != len(layers)):
            raise ValueError(f"attention_layers must list distinct encoder layer indices in [0, {self.encoder_layers}), "
                             f"got {layers}")
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if self.extent_activation is not None and self.extent_activation not in EXTENT_ACTIVATIONS:
            raise ValueError(f"extent_activation must be one of {EXTENT_ACTIVATIONS} or None, got {self.extent_activation!r}")
        if not self.ramp >= 1:
            raise ValueError(f"ramp must be >= 1, got {self.ramp}")
        if not 0 < self.width_init < 1:
            raise ValueError(f"width_init must be in (0, 1), got {self.width_init}")
        if not self.width_penalty_coef >= 0:
            raise ValueError(f"width_penalty_coef must be >= 0, got {self.width_penalty_coef}")
        floor = self.resolved_width_floor
        if not 0 <= floor < self.width_init:
            raise ValueError(f"width_floor must be in [0, width_init = {self.width_init}), got {floor}")
        for name, layers in (("width_budget", self.encoder_layers), ("decoder_width_budget", self.decoder_layers)):
            budgets = getattr(self, name)
            if budgets is None:
                continue
            if self.width_mode != "adaptive":
                raise ValueError(f"{name} needs width_mode='adaptive' (a fixed width has nothing to budget)")
            if not isinstance(budgets, list) or len(budgets) != layers:
                raise ValueError(f"{name} must be one value or one per layer ({layers}), got {budgets}")
            if not all(floor < b <= 1 for b in budgets):
                raise ValueError(f"every {name} must be in (width_floor = {floor}, 1], got {budgets}")
        for name, sizes in (("head_windows", self.kernel_size), ("decoder_head_windows", self.decoder_kernel_size)):
            _check_head_windows(name, getattr(self, name), sizes, self.num_attention_heads, self.width_mode)
        if self.budgeted and self.extent_activation == "sigmoid":
            warnings.warn(
                "width_budget with extent_activation='sigmoid': a sigmoid extent's zero absorbs (its gradient "
                "vanishes), so the budget can collapse the widths for good; leave extent_activation unset (or "
                "set it to 'clamp') unless the model was trained with sigmoid", stacklevel=2
            )
        warmup = self.width_budget_warmup_steps
        if (warmup is not None and warmup < 0) or not self.width_budget_step_size > 0:
            raise ValueError("width_budget_warmup_steps must be >= 0 and width_budget_step_size > 0, got "
                             f"{warmup} and {self.width_budget_step_size}")
        for name in ("weight_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob", "activation_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.classifier_dropout is not None and not 0 <= self.classifier_dropout < 1:
            raise ValueError(f"classifier_dropout must be in [0, 1) or None, got {self.classifier_dropout}")
        if self.type_vocab_size < 0:
            raise ValueError(f"type_vocab_size must be >= 0, got {self.type_vocab_size}")
        if self.default_token_type is not None and not 0 <= self.default_token_type < max(self.type_vocab_size, 1):
            raise ValueError(f"default_token_type must be None or in [0, type_vocab_size), got {self.default_token_type}")
        if self.max_position_embeddings < 1:
            raise ValueError(f"max_position_embeddings must be >= 1, got {self.max_position_embeddings}")
        if not 0 <= self.position_offset < self.max_position_embeddings:
            raise ValueError(f"position_offset must be in [0, max_position_embeddings), got {self.position_offset}")


def _check_head_windows(name: str, windows, kernel_sizes: list[int], num_heads: int, width_mode: str) -> None:
    """Per layer None or ``num_heads`` pairs [left, right] that span that layer's kernel size."""
    if windows is None:
        return
    if width_mode != "fixed":
        raise ValueError(f"{name} needs width_mode='fixed' (the windows replace learned extents)")
    if not isinstance(windows, list) or len(windows) != len(kernel_sizes):
        raise ValueError(f"{name} must list one entry (None or per-head windows) per layer ({len(kernel_sizes)}), got {windows}")
    for layer, (heads, size) in enumerate(zip(windows, kernel_sizes)):
        if heads is None:
            continue
        if (not isinstance(heads, list) or len(heads) != num_heads
                or not all(isinstance(w, list) and len(w) == 2 and all(type(n) is int and n >= 0 for n in w) for w in heads)):
            raise ValueError(f"{name}[{layer}] must be {num_heads} pairs [left, right] of taps >= 0, got {heads}")
        span = max(w[0] for w in heads) + max(w[1] for w in heads) + 1
        if span != size:
            raise ValueError(f"{name}[{layer}] spans {span} taps: that layer's kernel size must be {span}, got {size}")


__all__ = ["DynConvConfig"]
