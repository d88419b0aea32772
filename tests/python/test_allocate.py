"""perkrec.allocate: the Python wrapper (arrays by view or a Candidates object), agreement with
an integer program (scipy milp / HiGHS) on small instances, limits always kept, errors, Pacer."""

import threading

import numpy as np
import pytest

import perkrec
from perkrec import _core
from perkrec.allocate import allocate_milp, user_set_value


def random_candidates(rng, n_users, k, n_benefits):
    lengths = rng.integers(0, k + 1, n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    benefit = np.concatenate(
        [rng.choice(n_benefits, size=m, replace=False) for m in lengths] + [np.zeros(0, int)]
    ).astype(np.int32)
    value = rng.uniform(-0.2, 3.0, offsets[-1]).astype(np.float32)
    cost = rng.uniform(0.1, 2.0, offsets[-1]).astype(np.float32)
    return {
        "offsets": offsets,
        "benefit": benefit,
        "value": value,
        "cost": cost,
        "n_benefits": n_benefits,
    }


def random_constraints(rng, c, n_users, n_benefits):
    k = {
        "budget": float(c["cost"].sum() * rng.uniform(0.05, 0.5)),
        "max_per_member": int(rng.integers(1, 4)),
    }
    if rng.random() < 0.6:
        k["inventory"] = np.where(
            rng.random(n_benefits) < 0.4, -1, rng.integers(0, n_users // 2 + 2, n_benefits)
        )
    if rng.random() < 0.5:
        k["benefit_kind"] = rng.integers(0, 3, n_benefits)
        k["n_kinds"] = 3
        k["max_per_kind"] = 1
    if rng.random() < 0.4:
        k["benefit_group"] = np.where(
            rng.random(n_benefits) < 0.5, rng.integers(0, 2, n_benefits), -1
        )
    if rng.random() < 0.5:
        k["member_segment"] = rng.integers(-1, 3, n_users)
        k["segment_max_members"] = [int(rng.integers(0, n_users // 2 + 2)), -1, -1]
        k["segment_max_cost"] = [-1.0, float(c["cost"].sum() * 0.1), -1.0]
    if rng.random() < 0.3:
        k["min_return_per_cost"] = float(rng.uniform(0, 1.2))
    return k


def test_matches_integer_program_on_small_instances():
    rng = np.random.default_rng(7)
    ratios, greedy_ratios = [], []
    for _ in range(40):
        n_users, n_benefits = int(rng.integers(6, 14)), 6
        c = random_candidates(rng, n_users, 4, n_benefits)
        k = random_constraints(rng, c, n_users, n_benefits)
        opt, chosen = allocate_milp(c, k)
        exact = perkrec.allocate(c, k, method="exact")
        dual = perkrec.allocate(c, k)
        greedy = perkrec.allocate(c, k, method="greedy")
        for plan in (exact, dual, greedy):
            assert perkrec.check_allocation(c, k, plan) == "", plan.method
        assert exact.value == pytest.approx(opt, rel=1e-6, abs=1e-6)
        assert dual.dual_bound >= opt - 1e-6
        assert dual.value <= opt + 1e-6
        if opt > 0:
            ratios.append(dual.value / opt)
            greedy_ratios.append(greedy.value / opt)
    assert np.mean(ratios) >= 0.99
    assert np.mean(ratios) >= np.mean(greedy_ratios)


def test_array_and_object_paths_agree_and_keep_limits():
    rng = np.random.default_rng(3)
    n_users, n_benefits = 3000, 25
    c = random_candidates(rng, n_users, 8, n_benefits)
    k = perkrec.make_constraints(
        budget=400.0,
        max_per_member=2,
        inventory=np.full(n_benefits, 60),
        member_segment=rng.integers(0, 3, n_users),
        segment_max_members=[500, -1, 200],
    )
    obj = perkrec.make_candidates(c["offsets"], c["benefit"], c["value"], c["cost"], n_benefits)
    a = perkrec.allocate(c, k, num_threads=2)
    b = perkrec.allocate(obj, k, num_threads=1)
    assert np.array_equal(a.candidate, b.candidate)
    assert a.value == b.value and a.cost == b.cost
    assert perkrec.check_allocation(c, k, a) == ""
    assert perkrec.check_allocation(obj, k, b) == ""
    assert a.cost <= 400.0 + 1e-9
    assert np.bincount(a.benefit, minlength=n_benefits).max() <= 60
    members = perkrec.allocation_users(a)
    assert len(members) == len(a.candidate)
    assert np.all(a.candidate >= c["offsets"][members]) and np.all(
        a.candidate < c["offsets"][members + 1]
    )
    assert a.dual_bound >= a.value
    names = _core.exclusion_reason_names()
    reasons = {names[r] for r in a.runner_up_reason[a.runner_up >= 0]}
    assert reasons <= set(names) - {"none"}
    assert "inventory" in reasons or "budget" in reasons or "below_multiplier" in reasons


def test_errors_name_the_field():
    rng = np.random.default_rng(1)
    c = random_candidates(rng, 20, 3, 5)
    with pytest.raises(perkrec.ConfigError, match="unknown field 'budgett'"):
        perkrec.allocate(c, budgett=3.0)
    with pytest.raises(perkrec.ConfigError, match="budget"):
        perkrec.allocate(c, budget=-1.0)
    with pytest.raises(perkrec.ConfigError, match="max_iterations"):
        perkrec.allocate(c, budget=1.0, params={"max_iterations": 0})
    with pytest.raises(perkrec.ConfigError, match="unknown params"):
        perkrec.allocate(c, budget=1.0, params={"iterations": 3})
    with pytest.raises(perkrec.ConfigError, match="method"):
        perkrec.allocate(c, budget=1.0, method="lp")
    bad = dict(c, cost=c["cost"].copy())
    bad["cost"][2] = -1
    with pytest.raises(perkrec.InputError, match=r"candidates.cost\[2\]"):
        perkrec.allocate(bad, budget=1.0)
    with pytest.raises(perkrec.InputError, match="inventory"):
        perkrec.allocate(c, budget=1.0, inventory=[1, 2])
    with pytest.raises(perkrec.InputError, match="missing keys"):
        perkrec.allocate({"offsets": c["offsets"]}, budget=1.0)
    big = random_candidates(rng, 60, 6, 10)
    with pytest.raises(perkrec.InputError, match="too big"):
        perkrec.allocate(big, budget=20.0, max_per_member=2, method="exact", max_nodes=500)


def test_user_set_value_diversity():
    assert user_set_value([10, 8, 6], [0, 0, 1], 0.5) == pytest.approx(10 + 4 + 6)
    assert user_set_value([10, 8]) == pytest.approx(18)


def test_pacer_concurrent_decisions_keep_the_budget():
    rng = np.random.default_rng(5)
    day = 86_400
    pacer = perkrec.Pacer(
        budget=300.0, start=0, end=day, max_per_member=1, inventory=np.full(10, 80)
    )
    n = 4000
    benefits = [rng.choice(10, 4, replace=False).astype(np.int32) for _ in range(n)]
    values = rng.uniform(0, 1, (n, 4)).astype(np.float32)
    costs = rng.uniform(0.1, 1, (n, 4)).astype(np.float32)
    issued = [[] for _ in range(4)]

    def worker(t):
        for i in range(t, n, 4):
            for j in pacer.decide(i, int(i / n * day), benefits[i], values[i], costs[i]):
                issued[t].append((benefits[i][j], float(costs[i][j])))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    flat = [x for part in issued for x in part]
    assert pacer.decisions == n and pacer.issued == len(flat)
    assert pacer.spent <= 300.0 + 1e-9
    assert sum(c for _, c in flat) == pytest.approx(pacer.spent, rel=1e-6)
    assert max(np.bincount([b for b, _ in flat], minlength=10)) <= 80
    # 800 units for ~4000 members: paced, the inventory lasts the day and the budget is spent
    # whatever the interleaving; first come, first served, the cheap early picks take every
    # unit before the budget is half spent (in order: about 160 of 300).
    assert pacer.spent >= 0.9 * 300.0
    assert pacer.get_params()["budget"] == 300.0 and pacer.get_params()["pace_inventory"] is True
    unpaced = perkrec.Pacer(
        budget=300.0,
        start=0,
        end=day,
        max_per_member=1,
        inventory=np.full(10, 80),
        pace_inventory=False,
    )
    for i in range(n):
        unpaced.decide(i, int(i / n * day), benefits[i], values[i], costs[i])
    assert unpaced.issued == 800 and unpaced.spent < 0.6 * 300.0
    two = perkrec.Pacer(budget=10.0, start=0, end=day, max_per_member=3)
    v = np.array([0.5, 2.0, 1.0, 1.5], np.float32)
    assert two.decide(0, 10, [4, 5, 6, 7], v, np.full(4, 0.1), max_new=2).tolist() == [1, 3]
    with pytest.raises(perkrec.InputError, match="max_new"):
        two.decide(1, 10, [4, 5, 6, 7], v, np.full(4, 0.1), max_new=-3)
    with pytest.raises(perkrec.InputError, match="max_new"):
        two.decide(1, 10, [4, 5, 6, 7], v, np.full(4, 0.1), max_new=1.5)
    with pytest.raises(perkrec.ConfigError, match="budget must be finite"):
        perkrec.Pacer(start=0, end=day, budget=float("nan"))
    with pytest.raises(perkrec.ConfigError, match="gain must be finite"):
        perkrec.Pacer(start=0, end=day, gain=float("inf"))
    assert "budget" not in perkrec.Pacer(start=0, end=day, budget=float("inf")).get_params()
    # Early in the day 0.2 spent is far ahead of the curve: the multiplier refuses everything.
    pos, why = two.decide(2, 10, [4, 5, 6, 7], v, np.full(4, 0.1), max_new=1, with_reasons=True)
    assert pos.tolist() == [] and why == ["below_multiplier"] * 4
    pos, why = two.decide(2, day, [4, 5, 6, 7], v, np.full(4, 0.1), max_new=1, with_reasons=True)
    assert pos.tolist() == [1] and why == ["member_cap", "none", "member_cap", "member_cap"]
    # No budget: only the member's cap limits it; the parameters omit the budget.
    free = perkrec.Pacer(start=0, end=day, max_per_member=3)
    assert free.decide(0, 10, [4, 5, 6, 7], v, np.full(4, 100.0)).tolist() == [1, 2, 3]
    assert free.spent == pytest.approx(300.0) and "budget" not in free.get_params()
    with pytest.raises(perkrec.ConfigError, match="end"):
        perkrec.Pacer(budget=1.0, start=5, end=5)
