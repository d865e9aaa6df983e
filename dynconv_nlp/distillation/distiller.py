"""The distillation objective: a DynConv student learns what a frozen Transformer teacher computes.

Stage 1, layer by layer: each student layer's conv sub-layer reads the teacher's input to that
layer and learns to reproduce the teacher's attention sub-layer output (after its residual and
layer norm). Layers are independent, so all train at once from one teacher forward pass, and only
the conv sub-layers get gradients.

Stage 2, end to end: the student runs on its own, and every layer's output is pulled towards the
teacher's; now every student weight trains, but the self-attention a hybrid student kept from the
teacher (``attention_layers``), which stays the teacher's exactly (frozen by :class:`Distiller`).

Both losses are mean squared errors per channel over real tokens (padding does not count). The
teacher's hidden states are post-layer-norm, so their values are of order one and the two losses
are on the same scale at every layer.
"""

from dataclasses import dataclass

import torch
from torch import nn

from ..models.dynconv.modeling_dynconv import _width_budget


@dataclass
class TeacherOutputs:
    """What the student learns from, for one batch.

    Attributes:
        hidden_states: the embeddings and every layer's output, L + 1 tensors [B, T, C].
        mixed: every layer's attention sub-layer output (residual and layer norm included), L tensors [B, T, C].
    """

    hidden_states: tuple[torch.Tensor, ...]
    mixed: list[torch.Tensor]


@torch.no_grad()
def run_teacher(teacher: nn.Module, input_ids, attention_mask, token_type_ids=None) -> TeacherOutputs:
    """The teacher's hidden states and attention sub-layer outputs (captured from ``attention.output``)."""
    mixed = []
    hooks = [layer.attention.output.register_forward_hook(lambda module, inputs, output: mixed.append(output))
             for layer in teacher.encoder.layer]
    try:
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = teacher(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    return TeacherOutputs(out.hidden_states, mixed)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per channel over the real tokens: [B, T, C], [B, T, C], mask [B, T] -> scalar."""
    mask = attention_mask.to(prediction.dtype).unsqueeze(-1)
    squared = (prediction.float() - target.float()).pow(2) * mask
    return squared.sum() / (mask.sum() * prediction.shape[-1]).clamp_min(1.0)


class Distiller(nn.Module):
    """A ``DynConvModel`` student and its frozen teacher; ``forward(**batch)`` gives the losses.

    The teacher is held outside the module tree, so that the optimizer, the checkpoints and DDP see
    only the student. The optimizer steps taken are a buffer, saved with every checkpoint, so a
    resumed run switches from stage 1 to stage 2 where an uninterrupted run would; the training
    loop counts them (:meth:`count_step`), as only it knows where an optimizer step ends.

    Args:
        student: a ``DynConvModel`` (see :func:`.mirror.mirror_config`).
        teacher: the teacher ``AutoModel``; put in eval mode and frozen.
        stage1_steps: optimizer steps of stage 1, then stage 2.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, stage1_steps: int):
        super().__init__()
        self.student = student
        self.__dict__["teacher"] = teacher.eval().requires_grad_(False)
        self.stage1_steps = stage1_steps
        for layer in student.encoder.layers:
            if layer.token_mixer == "attention":
                layer.attention.requires_grad_(False)
                layer.attention_sublayer.requires_grad_(False)
        self.register_buffer("optimizer_steps", torch.zeros((), dtype=torch.long))
        # The student config's width budget holds in distillation as in any training of the model.
        self.width_budget = _width_budget(student.config, decoder=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # no dropout in the targets
        return self

    @property
    def stage(self) -> int:
        """The stage of the current optimizer step: every micro-batch of one step is of the same stage."""
        return 1 if int(self.optimizer_steps) < self.stage1_steps else 2

    def count_step(self) -> None:
        """Called once per optimizer step, after its last micro-batch's forward pass."""
        self.optimizer_steps += 1

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> dict[str, torch.Tensor]:
        """Token ids [B, T] -> ``{"loss": the current stage's, "layer_loss", "hidden_loss", "width" [B]}``.

        In training, ``loss`` is stage 1's ``layer_loss`` or stage 2's ``hidden_loss`` (each plus
        ``width_penalty_coef`` times the batch's mean width, and the width budget's terms when the
        student's config sets one); in evaluation both losses are computed.
        The losses are means over the batch's real tokens; ``width`` is each sequence's mean width.
        """
        teacher = run_teacher(self.teacher, input_ids, attention_mask, token_type_ids)
        stage = self.stage
        losses = {}
        if not self.training or stage == 1:
            losses["layer_loss"], layer_widths = self.layer_loss(teacher, attention_mask)
        if not self.training or stage == 2:
            losses["hidden_loss"], layer_widths = self.hidden_loss(teacher, input_ids, attention_mask, token_type_ids)
        task = losses["layer_loss"] if self.training and stage == 1 else losses["hidden_loss"]
        width = layer_widths[:, self.student.config.conv_layers].mean(1)  # [B], over the conv layers
        coef = self.student.config.width_penalty_coef
        losses["loss"] = task + coef * width.mean() if coef else task
        if self.training and self.width_budget is not None:
            losses["loss"] = losses["loss"] + self.width_budget(layer_widths.mean(0)).to(task.dtype)
        losses["width"] = width.detach()
        return losses

    def layer_loss(self, teacher: TeacherOutputs, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: mean over the conv layers of each conv sub-layer's error, from the teacher's layer
        input; and each sequence's mean width per layer [B, L] (0 for a kept attention layer, which
        is the teacher's: no error)."""
        errors, widths = [], []
        for layer, layer_input, target in zip(self.student.encoder.layers, teacher.hidden_states, teacher.mixed):
            if layer.token_mixer == "attention":
                widths.append(layer_input.new_zeros(layer_input.shape[0]))
                continue
            mixed, conv = layer.mix_tokens(layer_input, attention_mask)
            errors.append(masked_mse(mixed, target, attention_mask))
            widths.append(conv.width_penalty)
        return torch.stack(errors).mean(), torch.stack(widths, dim=1)

    def hidden_loss(self, teacher: TeacherOutputs, input_ids, attention_mask, token_type_ids) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: mean over layers of the error of the student's own hidden states (every layer's
        output); and each sequence's mean width per layer [B, L]."""
        out = self.student(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           output_hidden_states=True)
        errors = [masked_mse(s, t, attention_mask) for s, t in zip(out.hidden_states[1:], teacher.hidden_states[1:])]
        return torch.stack(errors).mean(), out.layer_width_penalty
