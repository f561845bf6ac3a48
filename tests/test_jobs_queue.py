"""A training pool's job trace queued by a scheduler, end to end through ``simulate``."""

import pytest

from twin import load_scenario, simulate
from twin.catalog import accelerator_spec, model_spec
from twin.errors import InvalidInputError, ScenarioError
from twin.results import Result
from twin.units import S_PER_HOUR

H100 = accelerator_spec("H100-SXM")
MFU = 0.2  # low enough that the GPUs stay below their power limit: tokens are 6N-exact
RATE_PER_GPU = MFU * H100.bf16_flop_s / (6 * model_spec("Llama-3.1-8B").active_params)  # tokens/GPU-s

# One 4-GPU server. A(0 s, 2 GPUs, 600 s), B(60 s, 4 GPUs, 600 s), C(120 s, 2 GPUs, 300 s),
# D(180 s, 2 GPUs, 1200 s).
JOBS = "job_id,gpus,start_s,duration_s\nA,2,0,600\nB,4,60,600\nC,2,120,300\nD,2,180,1200\n"
#: EASY starts by hand: A 0; B waits for A's end (600, its reservation, 0 extra GPUs); C fits in
#: A's 2 free GPUs and ends at 420 <= 600: backfilled at 120; D (to 1620+ > 600) is not, and
#: starts when B ends, 1200. FCFS: C waits behind B, which holds all 4 GPUs on 600-1200, so C
#: and D start together at 1200.
EASY = [0.0, 600.0, 120.0, 1200.0]
FCFS = [0.0, 600.0, 1200.0, 1200.0]
GPU_S = 2 * 600 + 4 * 600 + 2 * 300 + 2 * 1200  # all end within the hour


def pool(tmp_path, scheduler, jobs=JOBS, duration_s=3600.0, **trace):
    (tmp_path / "jobs.csv").write_text(jobs)
    sc = load_scenario(
        "default",
        {
            "fleet.rows": 1,
            "fleet.racks_per_row": 1,
            "fleet.servers_per_rack": 1,
            "fleet.gpus_per_server": 4,
            "duration_s": duration_s,
            "step_s": 1,
            "report_interval_s": 60,
            "cooling": {"model": "ideal", "supply_temp_c": 30.0},
            "workloads": [
                {
                    "name": "train",
                    "kind": "training",
                    "model": "Llama-3.1-8B",
                    "mfu": MFU,
                    "servers": 1,
                    "jobs": {"path": "jobs.csv", "scheduler": scheduler, **trace},
                }
            ],
        },
    )
    return sc.model_copy(update={"source_dir": tmp_path})


@pytest.mark.parametrize(("scheduler", "expected"), [("easy", EASY), ("fcfs", FCFS)])
def test_queued_jobs_drive_the_pool(tmp_path, scheduler, expected):
    r = simulate(pool(tmp_path, scheduler), debug=True)
    k = r.kpis
    assert r.jobs is not None
    assert r.jobs["start_s"].tolist() == expected
    waits = [s - t for s, t in zip(expected, [0, 60, 120, 180], strict=True)]
    assert k["train_job_wait_mean_s"] == pytest.approx(sum(waits) / 4)
    assert k["train_job_wait_max_s"] == pytest.approx(max(waits))
    assert (k["train_jobs_started"], k["train_jobs_finished"], k["train_jobs_waiting_end"]) == (4, 4, 0)
    # Every GPU-second queued is run (conservation), within the 4 GPUs x 1 h of the pool.
    assert k["train_job_gpu_h_run"] == pytest.approx(GPU_S / S_PER_HOUR, rel=1e-12)
    assert k["train_job_gpu_h_demanded"] == pytest.approx(GPU_S / S_PER_HOUR, rel=1e-12)
    assert k["train_job_utilisation"] == pytest.approx(GPU_S / (4 * 3600), rel=1e-12)
    # Tokens: 6N FLOPs per token at the MFU, per GPU-second run, job by job.
    assert k["train_tokens_training"] == pytest.approx(RATE_PER_GPU * GPU_S, rel=1e-9)
    assert r.jobs["tokens_trained"].sum() == pytest.approx(k["train_tokens_training"], rel=1e-12)
    assert r.jobs["tokens_trained"].tolist() == pytest.approx(
        [RATE_PER_GPU * g for g in (1200, 2400, 600, 2400)], rel=1e-9
    )


def test_queue_length_by_hand(tmp_path):
    # EASY: B waits on [60, 600), D on [180, 1200): two at once; FCFS adds C on [120, 1200): three.
    assert simulate(pool(tmp_path, "easy")).kpis["train_job_queue_max"] == 2
    assert simulate(pool(tmp_path, "fcfs")).kpis["train_job_queue_max"] == 3


def test_jobs_table_is_saved_with_the_run(tmp_path):
    r = simulate(pool(tmp_path, "easy", duration_s=900.0))
    # Cut at 900 s: D has not started (waiting), B runs 600-1200 (300 s of it in the run).
    assert r.kpis["train_jobs_waiting_end"] == 1
    assert r.jobs["gpu_s_run"].tolist() == [1200.0, 1200.0, 600.0, 0.0]
    files = r.save(tmp_path / "out")
    assert tmp_path / "out" / "jobs.csv" in files
    back = Result.load(tmp_path / "out")
    assert back.jobs is not None
    assert back.jobs.equals(r.jobs)


def test_no_scheduler_keeps_the_run_unchanged(tmp_path):
    r = simulate(pool(tmp_path, "none"))
    assert r.jobs is None
    assert not any("wait" in key or "queue" in key for key in r.kpis)
    # B (4 GPUs) does not fit beside A and C: the excess is clipped, as before queues.
    assert r.kpis["train_job_gpu_h_run"] < r.kpis["train_job_gpu_h_demanded"]


def test_priority_column_orders_the_queue(tmp_path):
    # B and C each want all 4 GPUs after A: C (priority 9) goes first at 600, B at 1200.
    jobs = "job_id,gpus,start_s,duration_s,priority\nA,4,0,600,0\nB,4,60,600,0\nC,4,120,600,9\n"
    r = simulate(pool(tmp_path, "priority", jobs=jobs))
    assert r.jobs["start_s"].tolist() == [0.0, 1200.0, 600.0]


def test_a_job_larger_than_the_pool_is_refused_by_line(tmp_path):
    jobs = "job_id,gpus,start_s,duration_s\nA,2,0,600\nB,8,60,600\n"
    with pytest.raises(ScenarioError) as exc:
        simulate(pool(tmp_path, "easy", jobs=jobs))
    assert isinstance(exc.value, InvalidInputError)  # the CLI exits 2
    msg = str(exc.value)
    assert "workloads.0.jobs.path" in msg and "jobs.csv, line 3" in msg and "can never start" in msg
    # Without a queue it is clipped to the pool, as before.
    assert simulate(pool(tmp_path, "none", jobs=jobs)).kpis["train_job_gpu_h_run"] > 0


def test_a_looped_queue_repeats(tmp_path):
    # The EASY schedule ends at 2400 s (D); looped over 2 h, its copy starts at 2400 + 0, 600, ...
    r = simulate(pool(tmp_path, "easy", duration_s=7200.0, loop=True))
    assert r.kpis["train_jobs_started"] == 12  # three copies begin within 7200 s (0, 2400, 4800)
    assert r.kpis["train_job_gpu_h_run"] == pytest.approx(3 * GPU_S / S_PER_HOUR, rel=1e-12)


def test_a_fault_rolls_the_queued_pool_back_to_its_checkpoint(tmp_path):
    # The pool's one server fails at 300 s for 100 s: the pool loses its work since the last
    # checkpoint (none yet: since 0) and restarts from it once the server is back, as without a
    # queue. The schedule does not move; the GPU-hours the run placed (and the utilisation) fall.
    sc = pool(tmp_path, "easy")
    base = simulate(sc)
    fault = {"time_s": 300, "kind": "server_fail", "count": 1, "duration_s": 100}
    r = simulate(sc.with_updates({"events": [fault]}), debug=True)
    assert r.kpis["tokens_lost_training"] > 0
    assert "training_rollback" in set(r.events["event"])
    assert r.jobs["start_s"].tolist() == EASY
    assert r.kpis["train_job_utilisation"] < base.kpis["train_job_utilisation"]
    assert r.jobs["tokens_trained"].sum() == pytest.approx(r.kpis["train_tokens_training"], rel=1e-12)
