"""The job scheduler: FCFS, EASY backfill and priority by hand, against a plain reference, and its invariants."""

import doctest
import time
import typing

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.scenario.workload_schema import JobTrace
from twin.workload import scheduler
from twin.workload.scheduler import POLICIES, held_gpus, job_table, queue_kpis, schedule_jobs


def test_doctests():
    run = doctest.testmod(scheduler)
    assert run.attempted >= 3 and run.failed == 0


def starts(submit, gpus, run, cap, policy, **kw):
    return schedule_jobs(submit, gpus, run, cap, policy, **kw).start_s.tolist()


# A 4-GPU pool. A(0 s, 2 GPUs, 10 s), B(1 s, 4 GPUs, 10 s), C(2 s, 2 GPUs, 5 s), D(3 s, 2 GPUs, 20 s).
SUBMIT, GPUS, RUN = [0, 1, 2, 3], [2, 4, 2, 2], [10, 10, 5, 20]


def test_fcfs_by_hand():
    # A runs 0-10 on 2 GPUs; B needs all 4, so it waits for A's end (10) and runs 10-20; C and D
    # queue behind B (C would fit beside A, but FCFS never passes the head) and start together at 20.
    assert starts(SUBMIT, GPUS, RUN, 4, "fcfs") == [0, 10, 20, 20]


def test_easy_backfill_by_hand():
    # At 1 s B is the head: A ends at 10, then 2 + 2 = 4 GPUs are free, so B's reservation (shadow
    # time) is 10 with 4 - 4 = 0 extra GPUs. At 2 s C fits in A's 2 free GPUs and ends at 7 <= 10:
    # backfilled. At 3 s no GPU is free. At 7 s C ends, but D would run to 27 > 10 on 2 GPUs while
    # 0 are extra: not backfilled. B starts at 10 as reserved; D at B's end, 20.
    assert starts(SUBMIT, GPUS, RUN, 4, "easy") == [0, 10, 2, 20]


def test_easy_backfills_on_extra_gpus():
    # A(0, 3 GPUs, 10 s), B(1, 2 GPUs, 10 s), C(2, 1 GPU, 100 s). B's shadow time is 10, when
    # 1 + 3 = 4 GPUs are free: 4 - 2 = 2 extra. C runs far past 10 but on 1 <= 2 extra GPUs: it
    # starts at 2, and B still starts at 10 (3 GPUs free then). FCFS starts C with B at 10.
    args = ([0, 1, 2], [3, 2, 1], [10, 10, 100], 4)
    assert starts(*args, "easy") == [0, 10, 2]
    assert starts(*args, "fcfs") == [0, 10, 10]


def test_backfill_plans_with_the_walltime():
    # As test_easy_backfill_by_hand, but C asks for 20 s: by its walltime it would end at 22 > 10
    # and there is no extra GPU, so it is not backfilled even though it would really end at 7.
    wall = [10, 10, 20, 20]
    assert starts(SUBMIT, GPUS, RUN, 4, "easy", walltime_s=wall) == [0, 10, 20, 20]


def test_easy_counts_every_job_ending_at_the_shadow_time():
    # Three GPUs. A and B (1 GPU each) both end at 10. D (2 GPUs) is the head at 1 s: A alone makes
    # it fit at 10, but B ends then too, so 1 GPU is extra at the shadow time and E (1 GPU, 100 s)
    # backfills at 1 s. D still starts at 10 on A's and B's GPUs.
    args = ([0, 0, 1, 1], [1, 1, 2, 1], [10, 10, 10, 100], 3)
    assert starts(*args, "easy") == [0, 0, 10, 1]
    assert starts(*args, "fcfs") == [0, 0, 10, 10]


def test_priority_by_hand():
    # A, B, C each need the whole 4-GPU pool for 10 s; C (priority 5) arrives last but goes ahead
    # of B (priority 0) when A ends at 10: C runs 10-20, B 20-30. FCFS keeps B before C.
    args = ([0, 1, 2], [4, 4, 4], [10, 10, 10], 4)
    assert starts(*args, "priority", priority=[0, 0, 5]) == [0, 20, 10]
    assert starts(*args, "fcfs", priority=[0, 0, 5]) == [0, 10, 20]
    # Equal priorities: first come, first served.
    assert starts(*args, "priority", priority=[1, 1, 1]) == [0, 10, 20]


def test_priority_jumps_a_blocked_head_but_does_not_backfill():
    # A(0, 2 GPUs, 10 s), B(1, 4, 10) blocked, C(2, 2, 5) with priority 1: C is now the head and
    # fits in A's 2 free GPUs, so it starts at 2. D(3, 1 GPU, 1 s, priority 0) waits behind B under
    # "priority" (C took the free GPUs; at 7 C ends, but B is the head and blocks D until B ends
    # at 20); "priority_easy" backfills it at 7 (it ends at 8 <= B's shadow time 10).
    args = ([0, 1, 2, 3], [2, 4, 2, 1], [10, 10, 5, 1], 4)
    prio = [0, 0, 1, 0]
    assert starts(*args, "priority", priority=prio) == [0, 10, 2, 20]
    assert starts(*args, "priority_easy", priority=prio) == [0, 10, 2, 7]


def test_none_runs_every_job_at_its_submit_time():
    s = schedule_jobs(SUBMIT, GPUS, RUN, 4, "none")
    assert s.start_s.tolist() == SUBMIT
    assert s.wait_s.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gpus": [2, 5, 2, 2]}, "job 1: expected at most the pool's 4 GPUs"),
        ({"gpus": [2, 0, 2, 2]}, "job 1: expected a whole number of GPUs"),
        ({"gpus": [2, 1.5, 2, 2]}, "job 1: expected a whole number of GPUs"),
        ({"runtime_s": [10, 0, 5, 20]}, "job 1: expected a finite runtime"),
        ({"walltime_s": [10, 10, -1, 20]}, "job 2: expected a walltime"),
        ({"policy": "sjf"}, "unknown scheduling policy 'sjf'; valid: none, fcfs"),
    ],
)
def test_refused(kwargs, match):
    args = {"submit_s": SUBMIT, "gpus": GPUS, "runtime_s": RUN, "capacity_gpus": 4, "policy": "easy", **kwargs}
    with pytest.raises(ValueError, match=match):
        schedule_jobs(**args)


def test_an_oversized_job_is_only_clipped_without_a_queue():
    assert schedule_jobs([0], [8], [1], 4, "none").start_s.tolist() == [0]


def test_scenario_names_the_same_policies():
    literal = typing.get_args(JobTrace.model_fields["scheduler"].annotation)
    assert set(literal) == set(POLICIES)


def test_queue_kpis_and_job_table_by_hand():
    # EASY schedule of test_easy_backfill_by_hand: waits A 0, B 9, C 0, D 17 (all started by 25).
    s = schedule_jobs(SUBMIT, GPUS, RUN, 4, "easy")
    k = queue_kpis(s, 25.0)
    assert k["job_wait_mean_s"] == pytest.approx(26 / 4)
    assert k["job_wait_p50_s"] == pytest.approx(4.5)  # midway between 0 and 9
    assert k["job_wait_max_s"] == 17
    # p95 by linear interpolation between the 3rd (9) and 4th (17) of 4 sorted waits: 9 + 0.85 x 8
    assert k["job_wait_p95_s"] == pytest.approx(9 + 0.85 * 8)
    assert (k["jobs_started"], k["jobs_finished"], k["jobs_waiting_end"]) == (4, 3, 0)  # D runs to 40
    assert k["job_queue_max"] == 2  # B and D wait together on [3, 10)
    # Cut at 5 s: A and C started; B and D wait (censored, not in the waits).
    k5 = queue_kpis(s, 5.0)
    assert (k5["jobs_started"], k5["jobs_finished"], k5["jobs_waiting_end"], k5["job_wait_max_s"]) == (2, 0, 2, 0)
    # Tokens by GPU-seconds within [0, 25): A 2 x 10, B 4 x 10, C 2 x 5, D 2 x 5 = 80 GPU-s.
    table = job_table(s, ["A", "B", "C", "D"], 25.0, tokens=800.0)
    assert table["gpu_s_run"].tolist() == [20, 40, 10, 10]
    assert table["tokens_trained"].tolist() == pytest.approx([200, 400, 100, 100])
    assert table["wait_s"].tolist() == [0, 9, 0, 17]


def test_no_started_job_gives_undefined_waits():
    k = queue_kpis(schedule_jobs([10.0], [1], [5.0], 1, "fcfs"), 5.0)
    assert np.isnan(k["job_wait_p95_s"]) and k["jobs_started"] == 0 and k["jobs_waiting_end"] == 0


def test_a_looped_schedule_repeats_every_period():
    s = schedule_jobs([0, 1], [4, 4], [10, 10], 4, "fcfs").repeated(20.0, 50.0)  # three copies
    assert s.start_s.tolist() == [0, 10, 20, 30, 40, 50]
    k = queue_kpis(s, 50.0)
    assert (k["jobs_started"], k["jobs_finished"]) == (5, 5)  # the fifth ends at 50, the sixth starts there


# ------------------------------------------------------------------ against a plain reference


def reference(submit, gpus, run, wall, cap, prio, policy):
    """EASY / FCFS / priority as Mu'alem & Feitelson state it: a pass over the whole queue at every event."""
    order_by, backfill = POLICIES[policy]
    n = len(submit)
    key = (lambda j: (submit[j], j)) if order_by == "submit" else (lambda j: (-prio[j], submit[j], j))
    start = [None] * n
    running = []  # (end, planned end, job)
    pending = sorted(range(n), key=lambda j: (submit[j], j))
    waiting = []
    while pending or waiting:
        now = min([submit[j] for j in pending] + [e for e, _, _ in running])
        running = [r for r in running if r[0] > now]
        waiting += [j for j in pending if submit[j] <= now]
        pending = [j for j in pending if submit[j] > now]
        waiting.sort(key=key)
        free = cap - sum(gpus[j] for _, _, j in running)

        def launch(j, now, running, waiting):
            start[j] = now
            running.append((now + run[j], now + wall[j], j))
            waiting.remove(j)
            return gpus[j]

        while waiting and gpus[waiting[0]] <= free:
            free -= launch(waiting[0], now, running, waiting)
        if not (backfill and waiting):
            continue
        head, avail = waiting[0], free
        for end, j in sorted((max(p, now), j) for _, p, j in running):
            avail += gpus[j]
            if avail >= gpus[head]:
                shadow = end
                break
        # the GPUs free at the shadow time: every job planned to end by then, ties included
        extra = free + sum(gpus[j] for _, p, j in running if max(p, now) <= shadow) - gpus[head]
        for j in list(waiting[1:]):
            if gpus[j] <= free and (now + wall[j] <= shadow or gpus[j] <= extra):
                if now + wall[j] > shadow:
                    extra -= gpus[j]
                free -= launch(j, now, running, waiting)
    return start


@st.composite
def job_lists(draw):
    cap = draw(st.integers(1, 8))
    n = draw(st.integers(1, 25))
    ints = st.integers
    submit = draw(st.lists(ints(0, 30), min_size=n, max_size=n))
    gpus = draw(st.lists(ints(1, cap), min_size=n, max_size=n))
    run = draw(st.lists(ints(1, 20), min_size=n, max_size=n))
    wall = [r + draw(ints(-5, 10)) for r in run]  # some under-estimates: jobs outrun their walltime
    wall = [max(w, 1) for w in wall]
    prio = draw(st.lists(ints(0, 2), min_size=n, max_size=n))
    return [float(x) for x in submit], gpus, [float(x) for x in run], [float(x) for x in wall], cap, prio


@settings(max_examples=300, deadline=None)
@given(jobs=job_lists(), policy=st.sampled_from(["fcfs", "easy", "priority", "priority_easy"]))
def test_matches_the_reference_and_keeps_its_invariants(jobs, policy):
    submit, gpus, run, wall, cap, prio = jobs
    s = schedule_jobs(submit, gpus, run, cap, policy, priority=prio, walltime_s=wall)
    assert s.start_s.tolist() == reference(submit, gpus, run, wall, cap, prio, policy)
    assert (s.start_s >= s.submit_s).all()
    times, held = held_gpus(s.start_s, s.end_s, s.gpus)
    assert held.max() <= cap  # never more GPUs placed than the pool has
    assert held[-1] == 0
    # conservation: the placed signal's GPU-seconds are the jobs' GPU-seconds
    assert float(np.sum(held[:-1] * np.diff(times))) == pytest.approx(float(np.dot(gpus, run)))
    if policy == "fcfs":  # jobs start in submit order
        order = np.lexsort((np.arange(len(submit)), submit))
        assert (np.diff(s.start_s[order]) >= 0).all()


def test_hundred_thousand_jobs(capsys):
    # 10^5 jobs (1-64 GPUs, log-normal runtimes around 1 h) offered at 120 % of a 512-GPU pool, so
    # the queue grows to tens of thousands: EASY still schedules them in seconds (timing printed).
    rng = np.random.default_rng(1)
    n, cap = 100_000, 512
    gpus = rng.choice([1, 2, 4, 8, 16, 32, 64], size=n, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.06, 0.04])
    run = rng.lognormal(np.log(3600.0), 1.0, n)
    submit = np.cumsum(rng.exponential(float(np.dot(gpus, run)) / n / (1.2 * cap), n))
    t0 = time.perf_counter()
    s = schedule_jobs(submit, gpus, run, cap, "easy")
    wall_s = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n100 000 jobs, EASY backfill, 512 GPUs at 120 % load: {wall_s:.2f} s")
    _, held = held_gpus(s.start_s, s.end_s, s.gpus)
    assert held.max() <= cap and np.isfinite(s.start_s).all()
