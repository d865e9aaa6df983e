"""A compute budget for adaptive widths: each layer's mean width is held at or below a share of
K - 1 by a Lagrange multiplier, instead of a penalty coefficient the user has to guess.

The model adds ``sum_l lambda_l * (w_l - b_l)`` to its loss, where w_l is layer l's mean width over
the batch (share of K - 1) and b_l its budget. After every optimizer step the multipliers take one
step of dual ascent on the widths measured since the last step (over every process):

    lambda_l <- max(0, lambda_l + step_size * (mean w_l - b_l(step)))

so a layer over its budget is pushed harder each step until it complies, and a layer under it is
left alone (its multiplier decays to 0). The budget is warmed in linearly from full width (1) to
b_l over ``warmup_steps``, so that training starts unconstrained as Adaptive Attention Span does;
without a number of steps it is a share of the run, which the training loop sets
(:meth:`WidthBudget.set_run_length`).
The multipliers and the step count are buffers: checkpoints keep them and a resumed run takes the
same steps as one that was not interrupted.
"""

import math
import warnings

import torch
import torch.distributed as dist
from torch import nn

# The defaults, here only (DynConvConfig's width_budget_step_size and width_budget_warmup_steps are these):
# the dual ascent step, and the warm-in when none is given, as a share of the run's optimizer steps
# (the width study's).
STEP_SIZE = 0.01
WARMUP_SHARE = 0.3


class WidthBudget(nn.Module):
    """Per-layer multipliers of the width constraints ``mean width <= budget``.

    Args:
        budgets: one budget per layer, a share of K - 1 in (0, 1].
        warmup_steps: optimizer steps over which the budget falls from 1 to ``budgets``; ``None``:
            ``WARMUP_SHARE`` of the run, once :meth:`set_run_length` is told its length.
        step_size: the dual ascent step (multiplier units per unit of excess width and step); default
            :data:`STEP_SIZE`.
    """

    def __init__(self, budgets: list[float], warmup_steps: int | None = None, step_size: float = STEP_SIZE):
        super().__init__()
        self.budget_values, self.step_size = list(budgets), step_size
        self.warmup_steps_given = warmup_steps
        self.warmup_steps = warmup_steps
        # The budgets come from the config (not from a checkpoint); the rest is training state.
        self.register_buffer("budgets", torch.empty(len(budgets)), persistent=False)
        self.register_buffer("multipliers", torch.empty(len(budgets)))
        self.register_buffer("steps", torch.empty((), dtype=torch.long))
        self.register_buffer("measured", torch.empty(len(budgets)))  # the last step's mean widths, for the logs
        self.reset_buffers()
        # Widths seen since the last optimizer step; plain attributes, not buffers: DDP would
        # overwrite every process's own with the first one's.
        self._width_sum, self._batches = None, 0

    def reset_buffers(self, init=None) -> None:
        """The state of a run that has not started: no pressure, full width. ``init``: a module with
        ``copy_``, ``zeros_`` and ``ones_``, e.g. ``transformers.initialization``, whose versions leave
        values loaded from a checkpoint alone; by default the buffers are simply set."""
        with torch.no_grad():
            budgets = torch.tensor(self.budget_values, dtype=self.budgets.dtype)
            if init is None:
                self.budgets.copy_(budgets), self.multipliers.zero_(), self.steps.zero_(), self.measured.fill_(1.0)
                return
            init.copy_(self.budgets, budgets)
            init.zeros_(self.multipliers)
            init.zeros_(self.steps)
            init.ones_(self.measured)

    def set_run_length(self, max_train_steps: int) -> int:
        """The warm-in of a run of ``max_train_steps`` optimizer steps: the one given, else
        ``WARMUP_SHARE`` of them (rounded up). Returns it."""
        if self.warmup_steps_given is None:
            self.warmup_steps = math.ceil(WARMUP_SHARE * max_train_steps)
        return self.warmup_steps

    def targets(self) -> torch.Tensor:
        """The budgets [L] at this step: warmed in linearly from full width."""
        if not self.warmup_steps:  # None: no run has said its length (evaluation): the budget itself
            return self.budgets
        progress = (self.steps.float() / self.warmup_steps).clamp(max=1.0)  # on the device: no sync
        return 1.0 - (1.0 - self.budgets) * progress

    def forward(self, layer_widths: torch.Tensor) -> torch.Tensor:
        """The constraint terms of the loss, a scalar, from each layer's mean width [L]; while training,
        the widths are also recorded for the next dual step."""
        if self.training:
            if self.warmup_steps is None:
                warnings.warn("WidthBudget: no warm-in, the budget holds from the first step: give warmup_steps "
                              "(width_budget_warmup_steps) or call set_run_length(max_train_steps) before training",
                              stacklevel=2)
                self.warmup_steps = 0
            widths = layer_widths.detach().float()
            self._width_sum = widths if self._width_sum is None else self._width_sum + widths
            self._batches += 1
        excess = layer_widths - self.targets().to(layer_widths.dtype)
        return (self.multipliers.to(layer_widths.dtype) * excess).sum()

    @torch.no_grad()
    def after_optimizer_step(self) -> dict:
        """One dual ascent step on the widths recorded since the last one; returns what to log."""
        if self._width_sum is None:
            return {}
        totals = torch.cat([self._width_sum, self._width_sum.new_tensor([self._batches])])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(totals)  # every process takes the same step
        self.measured.copy_(totals[:-1] / totals[-1])
        targets = self.targets()
        self.multipliers.add_(self.step_size * (self.measured - targets)).clamp_(min=0.0)
        self.steps += 1
        self._width_sum, self._batches = None, 0
        return self.training_logs(targets)

    def training_logs(self, targets: torch.Tensor | None = None) -> dict:
        """Budget, multiplier and measured width of every layer, for the trackers and the epoch's metrics."""
        targets = self.targets() if targets is None else targets
        logs = {}
        for layer, (budget, multiplier, width) in enumerate(zip(targets.tolist(), self.multipliers.tolist(), self.measured.tolist())):
            logs |= {f"width_budget_{layer}": budget, f"width_multiplier_{layer}": multiplier, f"width_{layer}": width}
        return logs
