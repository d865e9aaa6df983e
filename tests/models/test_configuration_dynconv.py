import dataclasses
import inspect
import json
import re

import pytest
from transformers import AutoConfig, PreTrainedConfig

from dynconv_nlp import DynConvConfig, DynConvForSequenceClassification, DynConvModel
from dynconv_nlp.distillation.mirror import parse_config_overrides
from dynconv_nlp.layers import DynamicConv1d, WidthBudget, blocks, dynamic_conv, width_budget
from dynconv_nlp.models.dynconv import configuration_dynconv
from dynconv_nlp.models.dynconv.configuration_dynconv import CHOICES, fairseq_kernel_sizes


def test_auto_config_for_model_fills_in_sensible_defaults():
    config = AutoConfig.for_model("dynconv", vocab_size=8000, hidden_size=256, num_hidden_layers=4)
    assert isinstance(config, DynConvConfig)
    assert config.encoder_layers == config.num_hidden_layers == 4
    assert config.kernel_size == [3, 7, 15, 31]  # fairseq's schedule, one per layer
    assert config.decoder_kernel_size == fairseq_kernel_sizes(config.decoder_layers)
    assert (config.kernel_type, config.width_mode, config.position_embedding_type) == ("dynamic", "adaptive", "sinusoidal")
    assert config.decoder_start_token_id == config.bos_token_id


def test_one_kernel_size_applies_to_every_layer():
    config = DynConvConfig(encoder_layers=3, decoder_layers=2, kernel_size=5, decoder_kernel_size=7)
    assert config.kernel_size == [5, 5, 5] and config.decoder_kernel_size == [7, 7]


def test_dict_round_trip_keeps_every_value():
    config = DynConvConfig(hidden_size=64, num_attention_heads=4, kernel_size=[3, 5], encoder_layers=2, width_mode="fixed")
    again = DynConvConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()


def test_saved_config_loads_back(tmp_path):
    config = DynConvConfig(encoder_layers=2, kernel_size=[3, 9], kernel_type="light", ramp=2.0)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, DynConvConfig)
    assert (loaded.kernel_size, loaded.kernel_type, loaded.ramp) == ([3, 9], "light", 2.0)


@pytest.mark.parametrize(
    "settings,match",
    [
        (dict(hidden_size=100, num_attention_heads=3), r"num_attention_heads = 3 must divide hidden_size = 100"),
        (dict(encoder_layers=3, kernel_size=[3, 5]), r"kernel_size must list one kernel size per layer \(3\), got \[3, 5\]"),
        (dict(decoder_layers=1, decoder_kernel_size=[3, 5]), r"decoder_kernel_size must list one kernel size per layer \(1\)"),
        (dict(encoder_layers=2, kernel_size=[3, 0]), r"every kernel_size must be >= 1, got \[3, 0\]"),
        (dict(kernel_type="heavy"), r"kernel_type must be one of \('dynamic', 'light'\), got 'heavy'"),
        (dict(width_mode="wide"), r"width_mode must be one of .*, got 'wide'"),
        (dict(position_embedding_type="rotary"), r"position_embedding_type must be one of .*, got 'rotary'"),
        (dict(conv_backend="cuda"), r"conv_backend must be one of .*, got 'cuda'"),
        (dict(hidden_act="tanh"), r"hidden_act must be one of .*, got 'tanh'"),
        (dict(ramp=0.5), r"ramp must be >= 1, got 0.5"),
        (dict(width_init=0.0), r"width_init must be in \(0, 1\), got 0.0"),
        (dict(width_penalty_coef=-1.0), r"width_penalty_coef must be >= 0, got -1.0"),
        (dict(hidden_dropout_prob=1.0), r"hidden_dropout_prob must be in \[0, 1\), got 1.0"),
        (dict(vocab_size=0), r"vocab_size must be >= 1, got 0"),
        (dict(num_hidden_layers=0), r"encoder_layers must be >= 1, got 0"),
        (dict(max_position_embeddings=0), r"max_position_embeddings must be >= 1, got 0"),
        (dict(extent_activation="tanh"), r"extent_activation must be one of .*, got 'tanh'"),
        (dict(conv_trim="tiles"), r"conv_trim must be one of \(True, False, 'tile', 'token'\), got 'tiles'"),
        (dict(width_init=0.3, width_floor=0.3), r"width_floor must be in \[0, width_init = 0.3\), got 0.3"),
        (dict(width_mode="fixed", width_budget=0.5), r"width_budget needs width_mode='adaptive'"),
        (dict(encoder_layers=2, width_budget=[0.5]), r"width_budget must be one value or one per layer \(2\)"),
        (dict(width_budget=0.01), r"every width_budget must be in \(width_floor = 0.01, 1\]"),
        (dict(decoder_layers=1, decoder_width_budget=1.5), r"every decoder_width_budget must be in"),
        (dict(width_budget=0.5, width_budget_step_size=0), r"width_budget_step_size > 0"),
    ],
)
def test_bad_values_raise_a_value_error_naming_them(settings, match):
    with pytest.raises(ValueError, match=match):
        DynConvConfig(**settings)


def test_a_width_budget_defaults_to_extents_without_an_absorbing_zero():
    plain = DynConvConfig()
    assert (plain.resolved_extent_activation, plain.resolved_width_floor) == ("sigmoid", 0.0)  # as before budgets
    budgeted = DynConvConfig(encoder_layers=3, width_budget=0.25)
    assert budgeted.width_budget == [0.25] * 3
    assert (budgeted.resolved_extent_activation, budgeted.resolved_width_floor) == ("clamp", 0.01)
    with pytest.warns(UserWarning, match="sigmoid extent's zero absorbs"):
        explicit = DynConvConfig(width_budget=0.25, extent_activation="sigmoid")
    assert (explicit.resolved_extent_activation, explicit.resolved_width_floor) == ("sigmoid", 0.0)
    assert DynConvConfig.from_dict(budgeted.to_dict()).to_dict() == budgeted.to_dict()


def budgeted_configs(tmp_path) -> dict[str, DynConvConfig]:
    """A budget of 0.25 on a 3-layer config, set each way a user sets one."""
    DynConvConfig(encoder_layers=3).save_pretrained(tmp_path / "plain")
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "config.json").write_text(json.dumps({"model_type": "dynconv", "encoder_layers": 3, "width_budget": 0.25}))
    overridden = DynConvConfig(encoder_layers=3)
    overridden.update_from_string("width_budget=0.25")
    return {
        "constructor": DynConvConfig(encoder_layers=3, width_budget=0.25),
        "per layer": DynConvConfig(encoder_layers=3, width_budget=[0.25, 0.25, 0.25]),
        "AutoConfig.for_model": AutoConfig.for_model("dynconv", encoder_layers=3, width_budget=0.25),
        "from_pretrained(width_budget=)": AutoConfig.from_pretrained(tmp_path / "plain", width_budget=0.25),
        "config JSON": AutoConfig.from_pretrained(tmp_path / "json"),
        "--config_overrides": overridden,
    }


def test_a_width_budget_gets_the_same_settings_however_it_is_set(tmp_path):
    for path, config in budgeted_configs(tmp_path).items():
        assert config.width_budget == [0.25] * 3, path  # one per layer as soon as the config is made
        settings = (config.resolved_extent_activation, config.resolved_width_floor, config.width_budget_warmup_steps)
        assert settings == ("clamp", 0.01, None), path
        model = DynConvForSequenceClassification(config)
        convs = [m for m in model.modules() if isinstance(m, DynamicConv1d)]
        assert {(c.extent_activation, c.width_floor) for c in convs} == {("clamp", 0.01)}, path
        assert model.width_budget.budget_values == [0.25] * 3, path
        assert model.width_budget.set_run_length(1000) == 300, path  # the warm-in: 30% of the run


def test_a_saved_model_keeps_the_activation_its_widths_were_trained_with(tmp_path):
    DynConvModel(DynConvConfig(encoder_layers=2, hidden_size=16, num_attention_heads=2, intermediate_size=32)).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["extent_activation"] == "sigmoid"
    with pytest.warns(UserWarning, match="sigmoid extent's zero absorbs"):
        config = AutoConfig.from_pretrained(tmp_path, width_budget=0.25)
    assert config.resolved_extent_activation == "sigmoid"  # its width projections were trained for it
    assert config.width_budget == [0.25, 0.25]


def test_config_overrides_read_json_values_and_expand_per_layer_settings():
    config = DynConvConfig(encoder_layers=2)
    config.update_from_string("kernel_size=[5,9],width_budget=0.3,extent_activation=clamp,conv_backend=band")
    assert config.kernel_size == [5, 9] and config.width_budget == [0.3, 0.3] and config.conv_backend == "band"
    assert config.resolved_width_floor == 0.01  # the clamp's own floor
    with pytest.raises(ValueError, match="'colour=red' is not name=value with a setting of this config"):
        config.update_from_string("colour=red")
    with pytest.raises(ValueError, match="every width_budget must be in"):
        config.update_from_string("width_budget=2")


def test_keywords_to_from_pretrained_are_made_with_the_config(tmp_path):
    DynConvConfig(encoder_layers=3, decoder_layers=2).save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path, kernel_size=7, decoder_width_budget=0.5, num_labels=3)
    assert (config.kernel_size, config.decoder_width_budget, config.num_labels) == ([7, 7, 7], [0.5, 0.5], 3)
    config, unused = DynConvConfig.from_pretrained(tmp_path, width_budget=0.3, colour="red", return_unused_kwargs=True)
    assert config.width_budget == [0.3] * 3 and unused == {"colour": "red"}
    with pytest.raises(ValueError, match="every width_budget must be in"):
        AutoConfig.from_pretrained(tmp_path, width_budget=2.0)


def test_expanding_again_changes_nothing():
    config = DynConvConfig(encoder_layers=3, decoder_layers=2, width_budget=0.25, decoder_kernel_size=5)
    before = config.to_dict()
    config.expand_per_layer()
    assert config.to_dict() == before


def _count_checks(monkeypatch) -> list:
    calls = []
    check = DynConvConfig.check_values
    monkeypatch.setattr(DynConvConfig, "check_values", lambda self: calls.append(1) or check(self))
    return calls


def test_the_values_are_checked_once_however_the_config_is_made(tmp_path, monkeypatch):
    DynConvConfig(encoder_layers=3).save_pretrained(tmp_path)
    saved = DynConvConfig(encoder_layers=3).to_dict()
    calls = _count_checks(monkeypatch)
    for make in (
        lambda: DynConvConfig(encoder_layers=3, width_budget=0.25),
        lambda: AutoConfig.for_model("dynconv", encoder_layers=3, width_budget=0.25),
        lambda: AutoConfig.from_pretrained(tmp_path),
        lambda: AutoConfig.from_pretrained(tmp_path, width_budget=0.25, kernel_size=5),
        lambda: DynConvConfig.from_dict(saved, width_budget=0.25),
    ):
        config = make()
        assert len(calls) == 1
        calls.clear()
    config.update_from_string("width_budget=0.25,kernel_size=5")
    config.validate()  # what --config_overrides does next (dynconv_nlp.training.loading): transformers' checks
    assert len(calls) == 1


def test_config_and_layers_share_their_choices_and_defaults():
    assert CHOICES["kernel_type"] is dynamic_conv.KERNEL_TYPES and CHOICES["width_mode"] is dynamic_conv.WIDTH_MODES
    assert CHOICES["conv_trim"] is dynamic_conv.TRIM_MODES and CHOICES["conv_backend"] is dynamic_conv.CONV_BACKENDS
    assert CHOICES["hidden_act"] is blocks.ACTIVATIONS and set(blocks.ACTIVATIONS) == set(blocks.ACTIVATION_FUNCTIONS)
    assert configuration_dynconv.EXTENT_ACTIVATIONS is dynamic_conv.EXTENT_ACTIVATIONS
    defaults = inspect.signature(WidthBudget).parameters
    assert DynConvConfig().width_budget_step_size == defaults["step_size"].default == width_budget.STEP_SIZE
    assert DynConvConfig().width_budget_warmup_steps is defaults["warmup_steps"].default is None


def test_config_overrides_and_distillation_overrides_read_alike():
    text = "kernel_size=[7, 15],width_mode=fixed,ramp=2,conv_backend=band"
    config = DynConvConfig(encoder_layers=2)
    config.update_from_string(text)
    assert {name: getattr(config, name) for name in parse_config_overrides(text)} == parse_config_overrides(text)


def test_the_docstring_gives_every_setting_its_type_and_default():
    documented = dict(re.findall(r"^        (\w+) \(`[^)]*`, \*optional\*(?:, defaults to (.+?))?\):$",
                                 DynConvConfig.__doc__, flags=re.MULTILINE))
    inherited = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    own = [f for f in dataclasses.fields(DynConvConfig) if f.name not in inherited]
    assert sorted(documented) == sorted(f.name for f in own)
    for field in own:
        default = documented[field.name]
        if field.default is None or field.name == "attention_layers":  # None stands for what the text says
            assert default in ("", "`[]`"), field.name
        else:
            assert default.strip("`").replace('"', "") == str(field.default), field.name
