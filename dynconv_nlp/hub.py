"""Publishing a trained DynConv model: a model card (with a summary of its learned widths), and the push.

A pushed folder holds everything a user needs: weights and config, the tokenizer, the model's
code (for ``trust_remote_code=True``) and the card. It goes up as one ``upload_folder`` commit, card
included; ``model.push_to_hub`` would write its own README.md over the card.
"""

from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token

# The width summary is computed in dynconv_nlp.analysis, with every other summary of the learned widths;
# the scripts call it as hub.summarize_widths and hub.format_widths, for the model card.
from dynconv_nlp.analysis import LayerWidths, format_widths, summarize_widths  # noqa: F401

# What a folder must hold before it is pushed: weights, config, tokenizer, card, and a DynConv model's code.
REQUIRED_FILES = ("config.json", "model.safetensors", "README.md")
DYNCONV_CODE_FILES = ("modeling_dynconv.py", "configuration_dynconv.py")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# Training states and logs that the scripts write beside the model: not part of a published model.
NOT_PUSHED = ["step_*/**", "epoch_*/**", "runs/**", ".tmp-*", ".tmp-*/**", ".old-*/**"]  # checkpoints, logs, half-written files


class HubError(RuntimeError):
    """A push that cannot happen or failed; the message is one line that says what to do."""


def write_model_card(
    output_dir: str | Path,
    config,
    *,
    model_name: str,
    task: str,
    dataset_name: str,
    dataset_type: str,
    metrics: dict[str, float],
    widths: list[LayerWidths] | None = None,
    dataset_config: str | None = None,
    dataset_split: str = "validation",
    language: str | None = "en",
    license: str = "apache-2.0",
    base_model: str | None = None,
    notes: str | None = None,
) -> Path:
    """Write ``output_dir/README.md``: metadata with a model-index, then the card's text.

    Args:
        config: the model's ``DynConvConfig``.
        model_name: the repository name users will see, e.g. ``"dynconv-small-sst2"``.
        task: a Hub task type: ``"text-classification"``, ``"translation"``, ``"fill-mask"``, ...
        dataset_name, dataset_type, dataset_config, dataset_split: the evaluation data, e.g.
            ``"GLUE SST-2"``, ``"nyu-mll/glue"``, ``"sst2"``, ``"validation"``.
        metrics: evaluation results, e.g. ``{"accuracy": 0.91}``.
        widths: :func:`summarize_widths` on some evaluation text.
        base_model: the Hub id of the model this one was made from (a local folder is left out).
        notes: markdown sections after the description, e.g. how the weights were obtained.
    """
    eval_results = [
        EvalResult(
            task_type=task,
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_config=dataset_config,
            dataset_split=dataset_split,
            metric_type=name,
            metric_name=name,
            metric_value=value,
        )
        for name, value in metrics.items()
    ]
    is_dynconv = getattr(config, "model_type", None) == "dynconv"
    data = ModelCardData(
        model_name=model_name,
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag=task,
        tags=["dynconv", "dynamic-convolution", "adaptive-width"] if is_dynconv else [config.model_type],
        datasets=[dataset_type] if "/" in dataset_type else None,  # only Hub dataset ids
        base_model=base_model if base_model and not Path(base_model).exists() else None,
        metrics=list(metrics),
        eval_results=eval_results,
    )
    text = "\n\n".join(
        [
            f"---\n{data.to_yaml()}\n---",
            f"# {model_name}",
            _description(config, task, dataset_name),
            *([notes] if notes else []),
            "## Results\n\n" + "\n".join(
                ["| metric | value |", "|---|---:|"] + [f"| {k} | {v:.4f} |" for k, v in metrics.items()]
            ),
            "## Learned widths\n\n"
            + (
                "Mean extents over the real tokens of evaluation text, in taps (K is the largest kernel):\n\n"
                + format_widths(widths)
                if widths
                else "Not measured for this checkpoint."
            ),
            _usage(model_name, task, remote_code=is_dynconv),
            "## Intended use and limitations\n\n"
            f"Trained for {task} on {dataset_name}; evaluate it on your own data before relying on it. "
            "It inherits the biases of its training data. The convolutions see a bounded context "
            "(the sum of the layers' extents), unlike self-attention.",
        ]
    )
    path = Path(output_dir) / "README.md"
    ModelCard(text).save(path)
    return path


def _description(config, task: str, dataset_name: str) -> str:
    if getattr(config, "model_type", None) != "dynconv":  # a baseline trained with the same scripts
        return f"A {config.model_type} model for {task}, trained on {dataset_name} with dynconv_nlp's scripts."
    layers = f"{config.encoder_layers} encoder layers (kernel sizes {config.kernel_size})"
    if config.is_encoder_decoder:
        layers += f" and {config.decoder_layers} decoder layers (kernel sizes {config.decoder_kernel_size})"
    attention = getattr(config, "attention_layers", None)
    mixing = "Every layer is"
    if attention:
        which = f"layers {', '.join(map(str, attention))} (0-based) are" if len(attention) > 1 else f"layer {attention[0]} (0-based) is"
        mixing = f"Encoder {which} standard multi-head self-attention; every other layer is"
    return (
        f"A DynConv model ([dynconv_nlp](https://github.com/dynconv-nlp/dynconv_nlp)) for {task}, trained on "
        f"{dataset_name}. {mixing} a dynamic convolution whose kernel is generated per token "
        f"(`kernel_type={config.kernel_type!r}`) and whose left/right width is "
        f"{'learned per token and head' if config.width_mode == 'adaptive' else 'fixed'} "
        f"(`width_mode={config.width_mode!r}`, ramp {config.ramp}, width penalty coefficient "
        f"{config.width_penalty_coef}). Size: hidden size {config.hidden_size}, {layers}, "
        f"{config.num_attention_heads} heads, feed-forward size {config.intermediate_size}."
    )


def _usage(model_name: str, task: str, remote_code: bool) -> str:
    note = "The model's code comes with the checkpoint; `pip install dynconv_nlp` is not needed.\n\n" if remote_code else ""
    trust = ", trust_remote_code=True" if remote_code else ""
    return (
        f"## Usage\n\n{note}```python\nfrom transformers import pipeline\n\n"
        f'pipe = pipeline("{task}", model="{model_name}"{trust})\n```'
    )


def check_push_folder(output_dir: str | Path) -> None:
    """Raise :class:`HubError` unless ``output_dir`` holds everything a pushed model needs."""
    output_dir = Path(output_dir)
    required = REQUIRED_FILES
    config = output_dir / "config.json"
    if config.is_file() and '"model_type": "dynconv"' in config.read_text():
        required += DYNCONV_CODE_FILES
    missing = [name for name in required if not (output_dir / name).is_file()]
    if not any((output_dir / name).is_file() for name in TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json)")
    if missing:
        raise HubError(
            f"{output_dir} is not ready to push, it lacks {', '.join(missing)}: "
            "save the model and tokenizer with save_pretrained and write the card first"
        )


def push_to_hub(
    output_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload DynConv model",
) -> str:
    """Upload ``output_dir`` (model, tokenizer, code and card) to ``repo_id`` in one commit; returns its URL."""
    check_push_folder(output_dir)
    token = token or get_token()
    if token is None:
        raise HubError("pushing to the Hub needs a token: run `hf auth login` or set HF_TOKEN")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(output_dir), commit_message=commit_message, ignore_patterns=NOT_PUSHED
        )
    except Exception as error:  # network, auth and server errors all end the push with one line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubError(f"could not push {output_dir} to {repo_id}: {reason}") from error
    return commit.commit_url
