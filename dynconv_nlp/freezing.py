"""Train adaptive, deploy fixed: an adaptive-width model becomes a fixed-width one with each head's own window.

An adaptive layer pays at run time for what it learned: a width projection, the ramp mask, and (on the
CPU) reading the largest extents back to trim. :func:`freeze_widths` measures the extents the model
gives real tokens of the text it is shown, takes a quantile per layer, head and side, and rounds it up
to the taps that extent switches on (tap d is on where d < extent + ramp), so that every token at or
under the quantile keeps all of its taps. The result is a model of the same class whose layers are
fixed-width convolutions with those per-head windows (``DynConvConfig.head_windows``): the kernel
projection generates only the taps of the widest head's window, there is no width projection, no mask
and no trimming. It saves and loads with ``from_pretrained`` like any other model.

A token whose extent reaches its head's window exactly gets the same output as before; a narrower one
now spreads its kernel over the whole window (the softmax no longer sees its ramp), so the frozen model
is not the adaptive one: measure the change on your task.
"""

import copy
import re
from collections.abc import Iterable, Mapping

import torch

from .layers.dynamic_conv import DynamicConv1d

# A conv layer's place in the config: ("encoder" or "decoder", layer index).
_LAYER_NAME = re.compile(r"(?:^|\.)(encoder|decoder)\.layers\.(\d+)\.conv$")


@torch.no_grad()
def measure_extents(model: torch.nn.Module, batches: Iterable[Mapping[str, torch.Tensor]]) -> dict:
    """Each adaptive conv layer's extents over the real tokens of ``batches`` (the model's keyword
    inputs, e.g. a tokenizer's output; seq2seq models need ``labels`` or ``decoder_input_ids``).

    Returns ``{(stack, layer): (left [N, H], right [N, H])}`` in taps, N the real tokens seen.
    """
    convs = {_place(name): module for name, module in model.named_modules()
             if isinstance(module, DynamicConv1d) and module.width_mode == "adaptive"}
    seen = {place: ([], []) for place in convs}

    def record(place):
        def hook(module, args, kwargs, output):
            mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
            real = (torch.ones(output.left_extent.shape[:2], dtype=torch.bool, device=output.left_extent.device)
                    if mask is None else mask.bool())
            seen[place][0].append(output.left_extent[real].float().cpu())
            seen[place][1].append(output.right_extent[real].float().cpu())
        return hook

    handles = [conv.register_forward_hook(record(place), with_kwargs=True) for place, conv in convs.items()]
    was_training = model.training
    try:
        model.eval()
        for batch in batches:
            model(**{k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if any(not left for left, _ in seen.values()):
        raise ValueError("measure_extents: no real token reached the conv layers; give the model some text")
    return {place: (torch.cat(left), torch.cat(right)) for place, (left, right) in seen.items()}


def windows_from_extents(left: torch.Tensor, right: torch.Tensor, conv: DynamicConv1d, quantile: float) -> list[list[int]]:
    """Each head's window ``[left, right]`` in taps: the ``quantile`` of its extents [N, H] on each side,
    rounded up to the last tap that extent switches on (d < extent + ramp), within the layer's K."""

    def reach(extents: torch.Tensor, limit: int) -> list[int]:
        return conv.reach(torch.quantile(extents, quantile, dim=0)).clamp(0, limit).long().tolist()

    lefts = reach(left, conv.max_left)
    rights = [0] * conv.num_heads if conv.causal else reach(right, conv.max_right)
    return [[l, r] for l, r in zip(lefts, rights)]


@torch.no_grad()
def freeze_widths(model, batches: Iterable[Mapping[str, torch.Tensor]], quantile: float = 0.99):
    """A fixed-width copy of adaptive-width ``model`` (a DynConv model of any head) whose heads keep the
    windows their learned extents reach on ``batches`` (see :func:`measure_extents`), at ``quantile``.

    Returns a new model of ``type(model)``, in eval mode, on ``model``'s device and dtype; ``model`` is
    left as it was. Its config says ``width_mode="fixed"`` with ``head_windows`` (and
    ``decoder_head_windows``) and each layer's ``kernel_size`` is its window's span; width budgets
    and penalties are dropped (there is no width left to train).
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    if model.config.width_mode != "adaptive":
        raise ValueError("freeze_widths needs an adaptive-width model (width_mode='adaptive')")
    extents = measure_extents(model, batches)
    convs = {_place(name): (name, module) for name, module in model.named_modules() if isinstance(module, DynamicConv1d)}
    config = copy.deepcopy(model.config)
    windows = {place: windows_from_extents(*extents[place], convs[place][1], quantile) for place in extents}
    # Each layer's widest reach to the left and to the right: its new kernel spans both.
    reach = {place: (max(l for l, _ in heads), max(r for _, r in heads)) for place, heads in windows.items()}
    for stack, sizes_name, windows_name in (("encoder", "kernel_size", "head_windows"),
                                            ("decoder", "decoder_kernel_size", "decoder_head_windows")):
        sizes = list(getattr(config, sizes_name))
        per_layer = [windows.get((stack, i)) for i in range(len(sizes))]
        for i in range(len(sizes)):
            if (stack, i) in reach:
                sizes[i] = sum(reach[stack, i]) + 1
        setattr(config, sizes_name, sizes)
        setattr(config, windows_name, per_layer if any(w is not None for w in per_layer) else None)
    config.width_mode, config.width_budget, config.decoder_width_budget = "fixed", None, None
    config.width_penalty_coef, config.extent_activation, config.width_floor = 0.0, None, None
    config.check_values()

    frozen = type(model)(config)
    # Everything but the width projections and the budget's state; then each kernel cut to its window.
    state = {name: tensor for name, tensor in model.state_dict().items()
             if ".width_proj." not in name and not re.search(r"(^|\.)width_budget\.", name)}
    for place, (left, right) in reach.items():
        name, conv = convs[place]
        start, stop = conv.padding_l - left, conv.padding_l + right + 1
        H, K = conv.num_heads, conv.kernel_size
        if conv.kernel_type == "dynamic":
            weight = state[f"{name}.kernel_proj.weight"]
            state[f"{name}.kernel_proj.weight"] = weight.view(H, K, -1)[:, start:stop].reshape(H * (stop - start), -1)
            if f"{name}.kernel_proj.bias" in state:
                state[f"{name}.kernel_proj.bias"] = state[f"{name}.kernel_proj.bias"].view(H, K)[:, start:stop].flatten()
        else:
            state[f"{name}.kernel_weight"] = state[f"{name}.kernel_weight"][:, start:stop]
    frozen.load_state_dict(state, strict=True)
    if getattr(model, "generation_config", None) is not None and hasattr(frozen, "generation_config"):
        frozen.generation_config = copy.deepcopy(model.generation_config)
    return frozen.to(device=model.device, dtype=model.dtype).eval()


def _place(module_name: str) -> tuple[str, int] | None:
    match = _LAYER_NAME.search(module_name)
    return (match.group(1), int(match.group(2))) if match else None


__all__ = ["freeze_widths", "measure_extents", "windows_from_extents"]
