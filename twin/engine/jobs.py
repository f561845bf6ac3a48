"""Training jobs: checkpoints, rollbacks and restarts.

A training pool is one synchronous job: when any of its servers goes down it loses the tokens
(and the IT energy) since its last checkpoint and pauses ``restart_s`` before continuing
elastically on the servers up; with none left up it restarts when some are back. Writing a
checkpoint stalls the job ``checkpoint_stall_s``. Paused servers sit idle (:meth:`TrainingJobs.pause_training`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import simpy

from twin._types import BoolArray, IntArray
from twin.engine.block import Block
from twin.engine.columns import Columns
from twin.engine.server_constants import ServeResult
from twin.engine.state import at
from twin.facility_parts.fleet import Facility


@dataclass
class Job:
    """A training pool's checkpoint state."""

    index: int
    servers: BoolArray
    interval_s: float
    stall_s: float
    restart_s: float
    tokens_since: float = 0.0
    energy_since_j: float = 0.0
    paused_until: float = 0.0
    restarting: bool = False
    ckpt_token: int = 0
    rollbacks: int = 0


class TrainingJobs:
    """The training jobs of one engine run.

    ``rolled_back(job, tokens, energy_j)`` is called when a job loses its work since the last
    checkpoint (the fault schedule counts and logs it).
    """

    def __init__(self, fac: Facility, env: simpy.Environment, rolled_back: Callable[[Job, float, float], None]) -> None:
        self.env = env
        self.rolled_back = rolled_back
        self.paused = np.zeros(fac.n_servers, dtype=bool)
        self.jobs = [
            Job(p.index, fac.pool_of_server == p.index, p.checkpoints.interval_s, p.checkpoints.stall_s,
                p.checkpoints.restart_s)
            for p in fac.pools
            if p.checkpoints is not None
        ]  # fmt: skip

    def start(self) -> None:
        """Schedule every job's first checkpoint."""
        for job in self.jobs:
            self._schedule_checkpoint(job, job.interval_s)

    @property
    def rollbacks(self) -> int:
        """Rollbacks of all jobs so far."""
        return sum(j.rollbacks for j in self.jobs)

    def servers_down(self, servers: BoolArray, server_up: BoolArray) -> None:
        """Roll back the jobs that lost some of ``servers``; restart them on the servers still up."""
        for job in self.jobs:
            if not (servers & job.servers).any() or job.restarting:
                continue  # not this job, or it is already restarting from its checkpoint
            self.rolled_back(job, job.tokens_since, job.energy_since_j)
            job.tokens_since = 0.0
            job.energy_since_j = 0.0
            job.rollbacks += 1
            job.restarting = True
            if (server_up & job.servers).any():
                self._restart(job)
            else:  # nothing left to restart on: the restart begins when its servers are back
                job.ckpt_token += 1  # cancel the pending checkpoint
                job.paused_until = np.inf
                self.paused[job.servers] = True

    def servers_back(self, server_up: BoolArray) -> None:
        """Restart the jobs that lost every server once some of theirs are up."""
        for job in self.jobs:
            if job.paused_until == np.inf and (server_up & job.servers).any():
                self._restart(job)

    def pause_training(self, res: ServeResult, cols: Columns, part: slice | IntArray | None = None) -> ServeResult:
        """Servers of a training job that is restarting or writing a checkpoint sit idle (``res``: columns ``part``)."""
        if not self.paused.any():
            return res
        p = cols.take(self.paused)
        p = p if part is None else p[part]
        return replace(
            res,
            busy=np.where(p, 0.0, res.busy),
            power_busy=np.where(p, 0.0, res.power_busy),
            mem_activity=np.where(p, 0.0, res.mem_activity),
            sm_activity=np.where(p, 0.0, res.sm_activity),
            training_tokens=np.where(p, 0.0, res.training_tokens),
        )

    def commit(self, b: Block) -> None:
        """Count the tokens and IT energy each job has produced since its last checkpoint."""
        cols = b.cols
        it_w = b.extra.chain.it_w
        for job in self.jobs:
            s = cols.take(job.servers)
            job.tokens_since += float(cols.total(b.serve.training_tokens * b.gpus, s).sum())
            job.energy_since_j += float(cols.total(it_w, s) @ b.dts)

    def _schedule_checkpoint(self, job: Job, at_s: float) -> None:
        job.ckpt_token += 1
        token = job.ckpt_token
        at(self.env, at_s, lambda _: self._checkpoint(job, token))

    def _checkpoint(self, job: Job, token: int) -> None:
        if token != job.ckpt_token:
            return
        job.tokens_since = 0.0
        job.energy_since_j = 0.0
        now = self.env.now
        if job.stall_s > 0:
            self._pause(job, now + job.stall_s)
        self._schedule_checkpoint(job, now + job.stall_s + job.interval_s)

    def _restart(self, job: Job) -> None:
        """Relaunch from the last checkpoint: ``restart_s`` idle, then the checkpoint clock restarts."""
        now = self.env.now
        job.paused_until = now
        self._pause(job, now + job.restart_s)
        self._schedule_checkpoint(job, now + job.restart_s + job.interval_s)

    def _pause(self, job: Job, until_s: float) -> None:
        job.paused_until = max(job.paused_until, until_s)
        self.paused[job.servers] = True
        at(self.env, job.paused_until, lambda _: self._resume(job))

    def _resume(self, job: Job) -> None:
        if job.paused_until <= self.env.now + 1e-9:
            self.paused[job.servers] = False
            job.restarting = False
