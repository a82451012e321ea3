"""Training to a wall-clock budget: how many steps fit, from the *steady-state* step time.

The trainer counts steps, not minutes, and resumes exactly (``--resume --steps N`` continues a
run as if it had never stopped), so the demo trains in a few calls of growing ``--steps``:

1. a short calibration call (``calibration_steps``);
2. from what it logged: the steady step time (the median of the per-step times logged after
   the first ``warmup`` steps of the call: start-up, allocator and thread-pool warm-up excluded)
   and the call's fixed cost (its wall time minus steps x steady step time: set-up, checkpoint
   load and save, the sample grid, the warm-up steps' extra time);
3. a call sized to end at ``fill`` x budget, with that fixed cost paid once more;
4. while more than ``tolerance`` x budget is left (the estimate was off, the machine got faster)
   and steps remain, another call sized the same way from the rates measured so far.

The functions here take the clock and the trainer as arguments, so the tests drive them with a
fake clock and a fake trainer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Budget:
    seconds: float  # wall-clock budget of the whole training stage, start-ups included
    max_steps: int  # never train past this step
    calibration_steps: int = 30  # steps of the first call
    warmup: int = 5  # first steps of every call left out of the step time
    fill: float = 0.97  # aim at this fraction of the budget
    first_share: float = 0.85  # the first sized call takes this share of what is left
    tolerance: float = 0.10  # stop when less than this fraction of the budget is left
    max_calls: int = 4  # calls of the trainer at most


@dataclass
class BudgetLog:
    """What :func:`train_to_budget` did: one entry per trainer call."""

    calls: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0

    def to_dict(self) -> dict:
        return {"calls": self.calls, "seconds": round(self.seconds, 2), "steps": self.steps}


def steady_step_seconds(step_times: dict[int, float], first: int, last: int, warmup: int) -> float | None:
    """Median logged time (s) of the steps first+warmup+1 .. last of one call, or None if the
    call logged none of them (a call of at most ``warmup`` steps: then all of its steps)."""
    steady = sorted(t for s, t in step_times.items() if first + warmup < s <= last)
    if not steady:
        steady = sorted(t for s, t in step_times.items() if first < s <= last)
    return steady[len(steady) // 2] if steady else None


def steps_that_fit(left_s: float, step_s: float, overhead_s: float) -> int:
    """Steps one more call can take in ``left_s`` seconds (>= 0)."""
    if step_s <= 0:
        return 0
    return max(0, math.floor((left_s - overhead_s) / step_s))


def train_to_budget(budget: Budget, train: Callable[[int], None], step: Callable[[], int],
                    step_times: Callable[[], dict[int, float]],
                    clock: Callable[[], float] = time.perf_counter,
                    say: Callable[[str], None] = lambda msg: None) -> BudgetLog:
    """Call ``train(target_step)`` until ``budget`` is filled (see the module docstring).

    ``step()``: the run's current step (0 before the first call). ``step_times()``: the run's
    logged time of each step so far, {step: seconds}.
    """
    log = BudgetLog()
    t_start = clock()
    rate = overhead = None
    while len(log.calls) < budget.max_calls:
        done = step()
        if done >= budget.max_steps:
            break
        elapsed = clock() - t_start
        left = budget.fill * budget.seconds - elapsed
        if rate is None:
            target = min(budget.max_steps, done + budget.calibration_steps)
        else:
            if budget.seconds - elapsed < budget.tolerance * budget.seconds:
                break
            # The calibration steps see no sample grid or checkpoint (every 100 steps), so the
            # first sized call takes only part of what is left; later calls are sized from the
            # previous call's wall time per step, which includes them (measured: median-based
            # sizing overshot a 420 s budget by 13 % on a quiet machine).
            share = budget.first_share if len(log.calls) == 1 else 1.0
            target = min(budget.max_steps, done + steps_that_fit(share * left, rate, overhead))
            if target <= done:
                break
            say(f"{rate:.3f} s/step (steady), {overhead:.1f} s per call: training on to step "
                f"{target} to fill {budget.seconds / 60:g} min")
        t0 = clock()
        train(target)
        wall = clock() - t0
        now = step()
        steady = steady_step_seconds(step_times(), done, now, budget.warmup)
        if steady is None:  # the run logged nothing: its wall time per step
            steady = wall / max(now - done, 1)
        # the call's fixed cost: start-up, warm-up steps' excess, checkpoint, sample grid
        rate, overhead = steady, max(0.0, wall - steady * (now - done))
        if log.calls and now - done > 0:  # a sized call: its whole wall time per step, one start-up
            first = log.calls[0]
            overhead = first["fixed_s"]
            rate = max(steady, (wall - overhead) / (now - done))
        log.calls.append({"from_step": done, "to_step": now, "seconds": round(wall, 2),
                          "steady_step_s": round(steady, 4), "fixed_s": round(overhead, 2)})
    log.seconds = clock() - t_start
    log.steps = step()
    return log
