"""A DynConv student that mirrors a pretrained BERT-family encoder, with the teacher's weights copied.

A self-attention sub-layer and a DynConv sub-layer have the same shape:

    attention:  W_o · Σ_j a[t, j] · W_v x_j           over every token
    conv:       W_out · Σ_j w[t, j] · W_in x_{t+j}     over a window, w generated from W_in x_t

with per-head weights on the same contiguous channel blocks. So the student keeps everything of
the teacher but the attention weights: embeddings (and their layer norm), ``W_v`` as the conv's
input projection (no GLU), ``W_o`` as its output projection, the sub-layers' layer norms
(post-norm) and the feed-forward layers. The kernel and width projections are new; distillation
(``scripts/distill_to_dynconv.py``) trains them to do what attention did.

A hybrid student (``attention_layers``) keeps the teacher's self-attention in those layers: query,
key, value and output projections and the layer norm are copied exactly, and the layer is BERT's.
"""

from transformers import PreTrainedConfig

from ..errors import UsageError
from ..models.dynconv.configuration_dynconv import ACTIVATIONS, DynConvConfig, read_settings

# Teachers whose modules follow BERT's layout (transformers' ``BertModel`` names), and how their
# positions start: RoBERTa's tables reserve the rows up to pad_token_id.
TEACHER_LAYOUTS = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
    "electra": "bert",
}

# Kernel size of every student layer unless --config_overrides says otherwise: attention sees the
# whole input, so the student gets a wide window and learns per token how much of it to use.
DEFAULT_KERNEL_SIZE = 31
# What --config_overrides may set: the convolutions, their widths, dropout and the classifier. The
# rest of the config is the teacher's, which the copied weights need.
STUDENT_SETTINGS = (
    "kernel_size", "kernel_type", "width_mode", "ramp", "width_init", "width_penalty_coef", "weight_dropout",
    "conv_backend", "hidden_dropout_prob", "activation_dropout", "classifier_pooling", "classifier_dropout",
    "width_budget", "width_budget_warmup_steps", "width_budget_step_size", "extent_activation", "width_floor",
)  # fmt: skip


def teacher_max_length(config: PreTrainedConfig) -> int:
    """The longest input the teacher reads: its position table less RoBERTa's reserved rows."""
    return config.max_position_embeddings - (config.pad_token_id + 1 if TEACHER_LAYOUTS[config.model_type] == "roberta" else 0)


def parse_config_overrides(text: str | None) -> dict:
    """``"kernel_size=[7,15,31,31,31,31],width_mode=fixed"`` -> ``{"kernel_size": [7, ...], "width_mode": "fixed"}``.

    Read as ``DynConvConfig.update_from_string`` reads them (:func:`read_settings`: values as JSON
    where they can be, lists may hold commas); only :data:`STUDENT_SETTINGS` may be set.
    """
    if not text:
        return {}
    settings = {}
    for item, name, value in read_settings(text):
        if name is None:
            raise UsageError(f"--config_overrides: {item!r} is not name=value (e.g. kernel_size=15,width_mode=fixed)")
        if name not in STUDENT_SETTINGS:
            raise UsageError(f"--config_overrides: {name} is not a setting of the student's convolutions; "
                             f"those are {', '.join(STUDENT_SETTINGS)} (the rest mirrors the teacher)")
        settings[name] = value
    return settings


def check_teacher(config: PreTrainedConfig, name: str) -> None:
    """Raise :class:`UsageError` unless ``config`` is an encoder this module can mirror."""
    if config.model_type not in TEACHER_LAYOUTS:
        raise UsageError(
            f"{name} is a {config.model_type!r} model; distillation maps the layouts of "
            f"{', '.join(sorted(TEACHER_LAYOUTS))} (BERT-family encoders)"
        )
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        raise UsageError(f"{name} is configured as a decoder; the teacher must be a bidirectional encoder")
    position_type = getattr(config, "position_embedding_type", None) or "absolute"
    if position_type != "absolute":
        raise UsageError(f"{name} uses {position_type!r} position embeddings; only absolute (learned) ones map")
    if config.hidden_act not in ACTIVATIONS:
        raise UsageError(f"{name} uses the activation {config.hidden_act!r}; the student has {', '.join(ACTIVATIONS)}")


def mirror_config(teacher_config: PreTrainedConfig, tokenizer, **conv_settings) -> DynConvConfig:
    """A :class:`DynConvConfig` with the teacher's sizes, norms and embeddings; ``conv_settings``
    (``kernel_size``, ``width_mode``, ``conv_backend``, ...) set the convolutions."""
    t = teacher_config
    settings = dict(
        vocab_size=t.vocab_size,
        hidden_size=t.hidden_size,
        embedding_size=getattr(t, "embedding_size", None) or t.hidden_size,
        encoder_layers=t.num_hidden_layers,
        decoder_layers=0,
        num_attention_heads=t.num_attention_heads,
        intermediate_size=t.intermediate_size,
        hidden_act=t.hidden_act,
        layer_norm_eps=t.layer_norm_eps,
        hidden_dropout_prob=t.hidden_dropout_prob,
        weight_dropout=t.attention_probs_dropout_prob,  # dropout on the taps, as on attention's weights
        initializer_range=t.initializer_range,
        normalize_before=False,
        embedding_layer_norm=True,
        scale_embedding=False,
        position_embedding_type="learned",
        max_position_embeddings=t.max_position_embeddings,
        position_offset=t.max_position_embeddings - teacher_max_length(t),
        clamp_positions=True,
        type_vocab_size=t.type_vocab_size,
        default_token_type=0 if t.type_vocab_size > 0 else None,
        glu=False,
        kernel_size=DEFAULT_KERNEL_SIZE,
        # The teacher's pooler reads the first token, which a convolution only sees through its
        # window: the student's classifiers pool the mean of the tokens.
        classifier_pooling="mean",
        pad_token_id=t.pad_token_id,
        bos_token_id=tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id,
        eos_token_id=tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return DynConvConfig(**(settings | conv_settings))


def weight_map(config: DynConvConfig) -> dict[str, str]:
    """Student (``DynConvModel``) parameter name -> teacher (``AutoModel``) parameter name, for every
    weight that has a counterpart."""
    names = {
        "embed_tokens.weight": "embeddings.word_embeddings.weight",
        "encoder.embeddings.position_embeddings.weight": "embeddings.position_embeddings.weight",
        "encoder.embeddings.token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
        "encoder.embeddings.layer_norm.weight": "embeddings.LayerNorm.weight",
        "encoder.embeddings.layer_norm.bias": "embeddings.LayerNorm.bias",
    }
    if config.embedding_size != config.hidden_size:
        names |= {f"encoder.embeddings.project.{p}": f"embeddings_project.{p}" for p in ("weight", "bias")}
    if config.type_vocab_size == 0:
        del names["encoder.embeddings.token_type_embeddings.weight"]
    feed_forward = {
        "ffn.fc1": "intermediate.dense",
        "ffn.fc2": "output.dense",
        "ffn_sublayer.norm": "output.LayerNorm",
    }
    conv = {
        "conv.input_proj": "attention.self.value",
        "conv.output_proj": "attention.output.dense",
        "conv_sublayer.norm": "attention.output.LayerNorm",
    }
    attention = {
        "attention.q_proj": "attention.self.query",
        "attention.k_proj": "attention.self.key",
        "attention.v_proj": "attention.self.value",
        "attention.out_proj": "attention.output.dense",
        "attention_sublayer.norm": "attention.output.LayerNorm",
    }
    for i in range(config.encoder_layers):
        sublayers = (attention if i in config.attention_layers else conv) | feed_forward
        for student, teacher in sublayers.items():
            for p in ("weight", "bias"):
                names[f"encoder.layers.{i}.{student}.{p}"] = f"encoder.layer.{i}.{teacher}.{p}"
    return names


def copy_teacher_weights(teacher, student) -> dict[str, str]:
    """Copy every mapped weight of ``teacher`` (an ``AutoModel``) into ``student`` (a ``DynConvModel``),
    exactly; returns the map. Shapes must agree (the config came from :func:`mirror_config`)."""
    names = weight_map(student.config)
    teacher_state, student_state = teacher.state_dict(), student.state_dict()
    for student_name, teacher_name in names.items():
        source, target = teacher_state[teacher_name], student_state[student_name]
        if source.shape != target.shape:
            raise UsageError(f"{teacher_name} {tuple(source.shape)} does not fit {student_name} {tuple(target.shape)}: "
                             "--config_overrides may not change the teacher's sizes")
        target.copy_(source)
    return names
