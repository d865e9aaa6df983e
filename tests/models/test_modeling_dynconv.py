"""The DynConv models in the style of transformers' model tests: a tiny config, every head."""

import pytest
import torch
import transformers
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

import dynconv_nlp
from dynconv_nlp import (
    DynConvForConditionalGeneration,
    DynConvForMaskedLM,
    DynConvForSequenceClassification,
    DynConvForTokenClassification,
    DynConvModel,
    DynConvSeq2SeqModel,
)
from dynconv_nlp.models import dynconv
from dynconv_nlp.models.dynconv.modeling_dynconv import AUTO_CLASSES, AUTO_MAP

from dynconv_testing import random_ids, tiny_config

B, T = 3, 11


def _model(model_class, seed=0, **config_overrides):
    torch.manual_seed(seed)
    return model_class(tiny_config(**config_overrides)).eval()


def _mask(lengths, length=T, side="right"):
    mask = torch.zeros(len(lengths), length, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1 if side == "right" else 0
        if side == "left":
            mask[i, length - n :] = 1
    return mask


@pytest.mark.parametrize(
    "auto_class,model_class",
    [
        (AutoModel, DynConvModel),
        (AutoModelForSequenceClassification, DynConvForSequenceClassification),
        (AutoModelForTokenClassification, DynConvForTokenClassification),
        (AutoModelForMaskedLM, DynConvForMaskedLM),
        (AutoModelForSeq2SeqLM, DynConvForConditionalGeneration),
    ],
)
def test_auto_classes_build_every_model(auto_class, model_class):
    assert type(auto_class.from_config(tiny_config())) is model_class


def test_one_table_exports_and_registers_every_class():
    assert set(AUTO_CLASSES) <= set(dynconv_nlp.__all__) and dynconv.__all__ == list(AUTO_CLASSES)
    for name, auto in AUTO_CLASSES.items():
        cls = getattr(dynconv_nlp, name)
        assert getattr(dynconv, name) is cls
        if auto and auto != "AutoConfig":
            assert getattr(transformers, auto)._model_mapping[dynconv_nlp.DynConvConfig] is cls, name
            assert AUTO_MAP[auto] == f"modeling_dynconv.{name}"
    assert transformers.AutoConfig.for_model("dynconv").__class__ is dynconv_nlp.DynConvConfig
    assert AUTO_MAP["AutoConfig"] == "configuration_dynconv.DynConvConfig"


MODEL_CLASSES = [DynConvModel, DynConvForSequenceClassification, DynConvForTokenClassification, DynConvForMaskedLM,
                 DynConvSeq2SeqModel, DynConvForConditionalGeneration]


@pytest.mark.parametrize("model_class", MODEL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "settings", [{}, {"width_budget": 0.5}, {"width_budget": 0.5, "decoder_width_budget": [0.5, 0.25]},
                 {"decoder_width_budget": 0.3, "width_penalty_coef": 0.1}, {"is_encoder_decoder": True}],
    ids=["plain", "encoder budget", "both budgets", "decoder budget", "encoder-decoder"],
)
def test_a_model_leaves_its_config_as_it_was(model_class, settings, tmp_path):
    config = tiny_config(num_labels=3, **settings)
    before = config.to_dict()
    model = model_class(config)
    assert config.to_dict() == before
    # An encoder-decoder keeps a copy that says so (generate() reads it); the config given is unchanged.
    encoder_decoder = model_class in (DynConvSeq2SeqModel, DynConvForConditionalGeneration) or before["is_encoder_decoder"]
    assert model.config.to_dict() == before | {"is_encoder_decoder": encoder_decoder}
    # A config loaded with a budget as a keyword, as from_pretrained(path, width_budget=...) gives it.
    tiny_config(num_labels=3).save_pretrained(tmp_path)
    loaded = transformers.AutoConfig.from_pretrained(tmp_path, **settings)
    before = loaded.to_dict()
    model_class(loaded)
    assert loaded.to_dict() == before


def test_base_model_shapes_hidden_states_and_widths():
    model = _model(DynConvModel)
    out = model(random_ids(B, T), attention_mask=_mask([11, 7, 1]), output_hidden_states=True, output_widths=True)
    assert out.last_hidden_state.shape == (B, T, 16)
    assert len(out.hidden_states) == 3  # embeddings + 2 layers
    assert [w.shape for w in out.widths] == [(B, T, 4, 2)] * 2
    # Centred kernels of 3 and 9 taps: extents within [0, 1] and [0, 4].
    for widths, max_extent in zip(out.widths, (1, 4)):
        assert widths.min() >= 0 and widths.max() <= max_extent
    assert out.width_penalty.shape == (B,)
    assert model(random_ids(B, T)).widths is None


@pytest.mark.parametrize(
    "problem_type,labels,num_labels",
    [
        ("single_label_classification", torch.tensor([0, 2, 1]), 3),
        ("regression", torch.tensor([0.5, -1.0, 2.0]), 1),
        ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), 3),
    ],
)
def test_sequence_classification_losses(problem_type, labels, num_labels):
    model = _model(DynConvForSequenceClassification, num_labels=num_labels)
    out = model(random_ids(B, T), attention_mask=_mask([11, 7, 3]), labels=labels)
    assert model.config.problem_type == problem_type  # inferred from num_labels and the labels' dtype
    assert out.logits.shape == (B, num_labels)
    logits = out.logits.squeeze(-1) if num_labels == 1 else out.logits
    expected = {
        "single_label_classification": lambda: torch.nn.functional.cross_entropy(logits, labels),
        "regression": lambda: torch.nn.functional.mse_loss(logits, labels),
        "multi_label_classification": lambda: torch.nn.functional.binary_cross_entropy_with_logits(logits, labels),
    }[problem_type]()
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "token_type" not in n)


def test_token_classification_ignores_unlabelled_tokens():
    model = _model(DynConvForTokenClassification, num_labels=5)
    labels = torch.randint(0, 5, (B, T))
    labels[:, 6:] = -100
    out = model(random_ids(B, T), labels=labels)
    assert out.logits.shape == (B, T, 5)
    expected = torch.nn.functional.cross_entropy(out.logits[:, :6].reshape(-1, 5), labels[:, :6].reshape(-1))
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()


def test_masked_lm_loss_and_tied_output_embedding():
    model = _model(DynConvForMaskedLM)
    assert model.lm_head.decoder.weight is model.model.embed_tokens.weight
    labels = torch.full((B, T), -100)
    labels[:, 3] = 7
    out = model(random_ids(B, T), labels=labels)
    assert out.logits.shape == (B, T, 99)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits[:, 3], labels[:, 3]))
    out.loss.backward()
    assert model.model.embed_tokens.weight.grad is not None


def test_seq2seq_loss_from_labels_shifts_them_right():
    model = _model(DynConvForConditionalGeneration)
    labels = random_ids(B, 6, seed=1)
    labels[0, 4:] = -100
    out = model(random_ids(B, T), attention_mask=_mask([11, 7, 3]), labels=labels)
    decoder_input_ids = torch.cat([torch.full((B, 1), 2), labels[:, :-1]], dim=1).masked_fill(
        torch.cat([torch.zeros(B, 1, dtype=torch.bool), labels[:, :-1] == -100], dim=1), 0
    )
    explicit = model(random_ids(B, T), attention_mask=_mask([11, 7, 3]), decoder_input_ids=decoder_input_ids)
    torch.testing.assert_close(out.logits, explicit.logits)
    expected = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 99), labels.reshape(-1))
    torch.testing.assert_close(out.loss, expected)
    assert out.cache is None  # no cache when training on labels
    out.loss.backward()
    assert model.lm_head.weight is model.model.shared.weight


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("position_embedding_type", ["sinusoidal", "learned", "none"])
def test_padded_batch_equals_each_sequence_alone(side, position_embedding_type):
    model = _model(DynConvForSequenceClassification, num_labels=2, position_embedding_type=position_embedding_type)
    lengths = [11, 6, 2]
    ids, mask = random_ids(B, T), _mask(lengths, side=side)
    ids = ids.masked_fill(mask == 0, 0)
    batched = model(ids, attention_mask=mask, output_widths=True)
    for i, n in enumerate(lengths):
        real = mask[i].bool()
        alone = model(ids[i : i + 1, real], output_widths=True)
        torch.testing.assert_close(batched.logits[i], alone.logits[0])
        torch.testing.assert_close(batched.width_penalty[i], alone.width_penalty[0])
        torch.testing.assert_close(batched.widths[1][i, real], alone.widths[1][0])


def test_width_penalty_enters_the_loss_with_its_coefficient():
    labels = torch.tensor([0, 1, 1])
    plain = _model(DynConvForSequenceClassification, num_labels=2, width_penalty_coef=0.0)
    penalised = _model(DynConvForSequenceClassification, num_labels=2, width_penalty_coef=0.5)
    ids, mask = random_ids(B, T), _mask([11, 7, 3])
    out_plain, out = plain(ids, attention_mask=mask, labels=labels), penalised(ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(out.width_penalty, out_plain.width_penalty)
    torch.testing.assert_close(out.loss, out_plain.loss + 0.5 * out.width_penalty.mean())
    # What the penalty adds to the gradient of the width projections pushes every extent down.
    (grad,) = torch.autograd.grad(out.loss, penalised.model.encoder.layers[1].conv.width_proj.bias)
    (grad_plain,) = torch.autograd.grad(out_plain.loss, plain.model.encoder.layers[1].conv.width_proj.bias)
    assert torch.all(grad - grad_plain > 0)


@pytest.mark.parametrize("model_class", MODEL_CLASSES[1:4] + MODEL_CLASSES[5:], ids=lambda c: c.__name__)
def test_every_head_adds_the_same_width_terms_to_its_loss(model_class):
    """coef * mean width penalty + sum over layers of multiplier * (batch-mean width - budget)."""
    model = _model(model_class, num_labels=2, width_penalty_coef=0.25, width_budget=[0.5, 0.25],
                   decoder_width_budget=0.75, width_budget_warmup_steps=0)
    seq2seq = model_class is DynConvForConditionalGeneration
    multipliers = torch.tensor([0.5, 2.0, 1.0, 3.0] if seq2seq else [0.5, 2.0])
    model.width_budget.multipliers.copy_(multipliers)
    ids, mask = random_ids(B, T), _mask([11, 7, 3])
    labels = {
        DynConvForSequenceClassification: torch.tensor([0, 1, 1]),
        DynConvForTokenClassification: torch.randint(0, 2, (B, T)),
        DynConvForMaskedLM: torch.randint(0, 99, (B, T)),
        DynConvForConditionalGeneration: random_ids(B, 5, seed=3),
    }[model_class]
    out = model(ids, attention_mask=mask, labels=labels)
    with torch.no_grad():
        decoder_inputs = {"decoder_input_ids": model.prepare_decoder_input_ids_from_labels(labels)} if seq2seq else {}
        base = model.model(ids, attention_mask=mask, **decoder_inputs)
        logits = out.logits.reshape(-1, out.logits.shape[-1])
    task = torch.nn.functional.cross_entropy(logits, labels.reshape(-1))
    budgets = torch.tensor([0.5, 0.25, 0.75, 0.75] if seq2seq else [0.5, 0.25])
    width_terms = 0.25 * base.width_penalty.mean() + (multipliers * (base.layer_width_penalty.mean(0) - budgets)).sum()
    torch.testing.assert_close(out.loss, task + width_terms)
    if seq2seq:
        torch.testing.assert_close(out.width_loss, width_terms)
    assert model(ids, attention_mask=mask, **({"decoder_input_ids": labels} if seq2seq else {})).loss is None


def test_fixed_width_has_no_penalty_and_full_extents():
    model = _model(DynConvModel, width_mode="fixed")
    out = model(random_ids(B, T), output_widths=True)
    assert torch.all(out.width_penalty == 0)
    assert torch.all(out.widths[1][..., 0] == 4) and torch.all(out.widths[1][..., 1] == 4)


def test_learned_positions_beyond_the_table_raise():
    model = _model(DynConvModel, position_embedding_type="learned", max_position_embeddings=8)
    with pytest.raises(ValueError, match=r"position 10 is beyond the 8 positions of the learned table"):
        model(random_ids(1, T))


def test_clamped_positions_read_inputs_longer_than_the_table():
    """Beyond the table every token takes its last row; tokens farther than the receptive field
    (here 1 + 4 taps each side) from the end of the table are as in the input cut at the table."""
    model = _model(DynConvModel, position_embedding_type="learned", max_position_embeddings=8, clamp_positions=True)
    ids = random_ids(1, 3 * 8)
    long = model(ids).last_hidden_state
    cut = model(ids[:, :8]).last_hidden_state
    assert long.shape == (1, 24, 16) and torch.isfinite(long).all()
    torch.testing.assert_close(long[:, :8 - 5], cut[:, :8 - 5])
    assert not torch.allclose(long[:, 7], cut[:, 7])  # the last table token sees the tokens after it


def test_position_offset_reads_the_table_from_that_row():
    """RoBERTa's tables start at pad_token_id + 1: the first token reads row 2."""
    model = _model(DynConvModel, position_embedding_type="learned", max_position_embeddings=10, position_offset=2)
    with torch.no_grad():
        model.encoder.embeddings.position_embeddings.weight[:2] = float("nan")  # rows no token may read
    assert torch.isfinite(model(random_ids(2, 8)).last_hidden_state).all()
    with pytest.raises(ValueError, match="position 8 is beyond the 8 positions"):
        model(random_ids(1, 9))


def test_bert_style_embeddings_normalise_then_project_to_the_hidden_size():
    """embedding_layer_norm: a layer norm on the summed embeddings; embedding_size != hidden_size (ELECTRA):
    embeddings of that width, projected to the model's; the masked-LM head maps back to it; without
    token_type_ids every token is of default_token_type."""
    model = _model(DynConvForMaskedLM, embedding_size=8, embedding_layer_norm=True, scale_embedding=False,
                   position_embedding_type="learned", default_token_type=0)
    embeddings = model.model.encoder.embeddings
    assert model.model.embed_tokens.weight.shape[1] == 8 and embeddings.layer_norm.normalized_shape == (8,)
    assert embeddings.project.in_features == 8 and embeddings.project.out_features == 16
    assert model.lm_head.decoder.weight is model.model.embed_tokens.weight
    ids = random_ids(B, T)
    embedded = model.model.embed_tokens(ids)
    summed = embedded + embeddings.position_embeddings(torch.arange(T)) + embeddings.token_type_embeddings.weight[0]
    expected = embeddings.project(embeddings.layer_norm(summed))  # eval: no dropout
    out = model(ids, output_hidden_states=True)
    torch.testing.assert_close(out.hidden_states[0], expected)
    assert out.logits.shape == (B, T, model.config.vocab_size)
    with pytest.raises(ValueError, match="embedding_size .* must equal hidden_size"):
        DynConvForConditionalGeneration(tiny_config(embedding_size=8))


def test_return_dict_false_gives_a_tuple():
    model = _model(DynConvForSequenceClassification, num_labels=2)
    out = model(random_ids(B, T), labels=torch.tensor([0, 1, 0]), return_dict=False)
    assert isinstance(out, tuple) and out[0].dim() == 0 and out[1].shape == (B, 2)


@pytest.mark.parametrize(
    "model_class", [DynConvForSequenceClassification, DynConvForMaskedLM, DynConvForConditionalGeneration]
)
def test_save_and_load_give_identical_logits(model_class, tmp_path):
    model = _model(model_class, num_labels=2)
    model.save_pretrained(tmp_path)
    loaded = model_class.from_pretrained(tmp_path).eval()
    ids, mask = random_ids(B, T), _mask([11, 7, 3])
    extra = {"decoder_input_ids": random_ids(B, 4, seed=2)} if model_class is DynConvForConditionalGeneration else {}
    torch.testing.assert_close(loaded(ids, attention_mask=mask, **extra).logits, model(ids, attention_mask=mask, **extra).logits, atol=0, rtol=0)
    if loaded.get_output_embeddings() is not None:
        assert loaded.get_output_embeddings().weight is loaded.get_input_embeddings().weight


def test_save_pretrained_with_push_to_hub_points_to_push_to_hub(tmp_path):
    with pytest.raises(ValueError, match=r"call model.push_to_hub\(repo_id\)"):
        _model(DynConvModel).save_pretrained(tmp_path, push_to_hub=True)


def test_a_bf16_checkpoint_loads_in_bf16_unless_told_otherwise(tmp_path):
    model = _model(DynConvForSequenceClassification, num_labels=2).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    assert DynConvForSequenceClassification.from_pretrained(tmp_path).dtype == torch.bfloat16  # dtype="auto"
    loaded = DynConvForSequenceClassification.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert loaded.dtype == torch.float32
    ids = random_ids(B, T)
    torch.testing.assert_close(loaded(ids).logits, model.float()(ids).logits)


def test_gradient_checkpointing_gives_the_same_gradients():
    ids, labels = random_ids(B, T), random_ids(B, 5, seed=3)
    grads = []
    for checkpointing in (False, True):
        model = _model(DynConvForConditionalGeneration).train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert all(layer.gradient_checkpointing for layer in model.model.encoder.layers)
        model(ids, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


def test_bf16_autocast_matches_fp32():
    model = _model(DynConvForSequenceClassification, num_labels=2)
    ids, mask, labels = random_ids(B, T), _mask([11, 7, 3]), torch.tensor([0, 1, 1])
    reference = model(ids, attention_mask=mask, labels=labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    torch.testing.assert_close(out.logits.float(), reference.logits, atol=0.1, rtol=0.1)
    assert torch.isfinite(out.loss)


def test_encoder_compiles_without_graph_breaks():
    model = _model(DynConvForSequenceClassification, num_labels=2)
    explanation = torch._dynamo.explain(model.model)(random_ids(B, T), _mask([11, 7, 3]))
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_classifier_exports_with_torch_export_and_matches():
    model = _model(DynConvForSequenceClassification, num_labels=2)
    ids, mask = random_ids(B, T), _mask([11, 7, 3])
    exported = torch.export.export(model, (ids,), kwargs={"attention_mask": mask})
    # A new batch with other padding runs through the same exported graph.
    ids2, mask2 = random_ids(B, T, seed=5), _mask([4, 11, 9])
    torch.testing.assert_close(
        exported.module()(ids2, attention_mask=mask2).logits, model(ids2, attention_mask=mask2).logits
    )


def test_every_seq2seq_parameter_gets_a_gradient():
    """DDP stops on parameters without gradients: the translation encoder has no token-type embedding."""
    model = DynConvForConditionalGeneration(tiny_config())
    model(random_ids(2, 5), labels=random_ids(2, 4, seed=1)).loss.backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("trim", [True, "tile", "token"])
def test_conv_trim_reaches_every_layer_and_changes_no_output(trim):
    lengths = [70, 33, 5]  # several tiles of 32 tokens, padded
    ids, mask = random_ids(3, 70), _mask(lengths, length=70)
    untrimmed = _model(DynConvModel, conv_trim=False).double()
    model = _model(DynConvModel, conv_trim=trim).double()
    assert {layer.conv.trim for layer in model.encoder.layers} == {trim}
    expected = untrimmed(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()], expected[mask.bool()])
