"""Width budgets: the multipliers' dual ascent, the extent activation without an absorbing zero, and a
layer that recovers from zero width once its budget is raised."""

import pytest
import torch
import torch.nn.functional as F

from dynconv_nlp.layers import DynamicConv1d, WidthBudget, extent_fraction


def test_the_budget_warms_in_from_full_width():
    budget = WidthBudget([0.2, 0.6], warmup_steps=4)
    expected = [[1.0, 1.0], [0.8, 0.9], [0.6, 0.8], [0.4, 0.7], [0.2, 0.6], [0.2, 0.6]]
    for targets in expected:
        torch.testing.assert_close(budget.targets(), torch.tensor(targets))
        budget.train()(torch.tensor([0.5, 0.5]))
        budget.after_optimizer_step()


def test_without_a_warm_in_the_budget_warms_in_over_a_share_of_the_run():
    budget = WidthBudget([0.2])
    assert budget.set_run_length(10) == 3  # 30% of the run, rounded up
    torch.testing.assert_close(budget.targets(), torch.tensor([1.0]))
    assert WidthBudget([0.2], warmup_steps=5).set_run_length(10) == 5  # one given is kept
    assert WidthBudget([0.2], warmup_steps=0).set_run_length(10) == 0
    unset = WidthBudget([0.2])  # a loop that never tells the run's length: no warm-in, and a warning
    torch.testing.assert_close(unset.targets(), torch.tensor([0.2]))
    unset.eval()(torch.tensor([0.5]))  # evaluation: nothing to warn about
    with pytest.warns(UserWarning, match="no warm-in"):
        unset.train()(torch.tensor([0.5]))
    assert unset.warmup_steps == 0


def test_dual_ascent_pushes_layers_over_budget_and_releases_those_under():
    budget = WidthBudget([0.3, 0.3], warmup_steps=0, step_size=0.5).train()
    budget(torch.tensor([0.5, 0.1]))  # two micro-batches of one optimizer step: their mean counts
    budget(torch.tensor([0.7, 0.1]))
    logs = budget.after_optimizer_step()
    torch.testing.assert_close(budget.multipliers, torch.tensor([0.5 * (0.6 - 0.3), 0.0]))
    assert logs["width_0"] == pytest.approx(0.6) and logs["width_multiplier_1"] == 0.0 and logs["width_budget_0"] == pytest.approx(0.3)
    for expected in (0.15 - 0.5 * 0.2, 0.0):  # under budget: down by 0.1 a step, then clamped at 0
        budget(torch.tensor([0.1, 0.1]))
        budget.after_optimizer_step()
        torch.testing.assert_close(budget.multipliers, torch.tensor([expected, 0.0]))
    assert budget.steps.item() == 3
    assert budget.after_optimizer_step() == {} and budget.steps.item() == 3  # nothing seen: no step


def test_the_constraint_term_is_the_multipliers_times_the_excess_and_evaluation_records_nothing():
    budget = WidthBudget([0.25, 0.5], warmup_steps=0)
    budget.multipliers.copy_(torch.tensor([2.0, 3.0]))
    widths = torch.tensor([0.5, 0.25], requires_grad=True)
    term = budget.eval()(widths)
    assert term.item() == pytest.approx(2.0 * 0.25 + 3.0 * -0.25)
    term.backward()
    torch.testing.assert_close(widths.grad, torch.tensor([2.0, 3.0]))
    assert budget.after_optimizer_step() == {}


def test_checkpoints_keep_the_training_state_but_not_the_budget():
    budget = WidthBudget([0.3], warmup_steps=0, step_size=1.0).train()
    budget(torch.tensor([0.9]))
    budget.after_optimizer_step()
    state = budget.state_dict()
    assert set(state) == {"multipliers", "steps", "measured"}
    other = WidthBudget([0.1], warmup_steps=0)
    other.load_state_dict(state)
    assert other.multipliers.item() == pytest.approx(0.6) and other.steps.item() == 1 and other.budgets.item() == pytest.approx(0.1)


def test_clamp_extents_pass_gradients_back_inside_only():
    z = torch.tensor([-0.5, -0.5, 0.25, 1.5, 1.5], requires_grad=True)
    fraction = extent_fraction(z, "clamp")
    torch.testing.assert_close(fraction, torch.tensor([0.0, 0.0, 0.25, 1.0, 1.0]))
    # A positive gradient lowers z (descent): dropped below 0, kept above 1; a negative one the other way.
    fraction.backward(torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0]))
    torch.testing.assert_close(z.grad, torch.tensor([0.0, -1.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("activation", ["sigmoid", "clamp"])
def test_the_floor_bounds_extents_and_width_init_holds_at_zero_weights(activation):
    z = torch.linspace(-30, 30, 61)
    fraction = extent_fraction(z, activation, floor=0.1)
    assert fraction.min().item() >= 0.1 and fraction.max().item() <= 1.0
    layer = DynamicConv1d(8, 2, 7, width_init=0.4, extent_activation=activation, width_floor=0.1)
    torch.nn.init.zeros_(layer.width_proj.weight)
    left, right = layer.extents(torch.randn(1, 5, 8))
    torch.testing.assert_close(left, torch.full_like(left, 0.4 * 3))
    torch.testing.assert_close(right, torch.full_like(right, 0.4 * 3))


def test_bad_extent_settings_are_refused():
    with pytest.raises(ValueError, match="extent_activation must be one of"):
        DynamicConv1d(8, 2, 7, extent_activation="tanh")
    with pytest.raises(ValueError, match="width_floor must be in"):
        DynamicConv1d(8, 2, 7, width_init=0.3, width_floor=0.3)


def _shift_task(steps, layer, budget, optimizer, generator):
    """Train ``layer`` to output the mean of the next three inputs (every right tap helps, so widening
    pays at any width) under ``budget``; returns the last task loss."""
    for _ in range(steps):
        x = torch.randn(8, 24, 8, generator=generator)
        target = sum(F.pad(x[:, shift:], (0, 0, 0, shift)) for shift in (1, 2, 3)) / 3
        out = layer(x)
        loss = F.mse_loss(out.hidden_states, target) + budget(out.width_penalty.mean().unsqueeze(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        budget.after_optimizer_step()


def _squeezed_then_released(activation: str, floor: float) -> tuple[float, float]:
    """A layer's mean width after 300 steps at a budget just above the floor, and after 300 more once
    the budget is raised to full width."""
    torch.manual_seed(0)
    layer = DynamicConv1d(8, 2, 7, extent_activation=activation, width_floor=floor, weight_dropout=0.0).train()
    with torch.no_grad():  # the identity as input and output projection: the taps alone do the task
        layer.input_proj.weight.copy_(torch.eye(8)), layer.input_proj.bias.zero_()
        layer.output_proj.weight.copy_(torch.eye(8)), layer.output_proj.bias.zero_()
    budget = WidthBudget([0.02], warmup_steps=0, step_size=1.0).train()  # enforced hard
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    _shift_task(300, layer, budget, optimizer, generator)
    squeezed = budget.measured.item()
    assert budget.multipliers.item() > 1.0
    budget.budgets.fill_(1.0)  # the budget raised: the multiplier decays and the task alone decides
    _shift_task(300, layer, budget, optimizer, generator)
    assert budget.multipliers.item() == 0.0
    return squeezed, budget.measured.item()


def test_a_layer_pushed_to_zero_width_recovers_when_the_budget_is_raised():
    squeezed, released = _squeezed_then_released("clamp", floor=0.01)
    assert squeezed < 0.02 and released > 0.1, (squeezed, released)
    # The sigmoid's vanishing gradient at zero: the same layer barely comes back.
    _, sigmoid_released = _squeezed_then_released("sigmoid", floor=0.0)
    assert sigmoid_released < released / 3, (sigmoid_released, released)
