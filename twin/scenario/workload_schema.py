"""The workloads' part of the scenario schema: arrivals, inference, training and telemetry pools.

Units are in the field names; :class:`twin.scenario.schema.Scenario` holds these parts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from twin import catalog
from twin.physics import interconnect as ic
from twin.scenario.strict import Float, Int, Overrides, StrictModel
from twin.workload import fluid


def _known_model_name(name: str) -> str:
    """A catalog name, a shipped Hugging Face id (its canonical spelling) or a ``config.json`` path.

    A path is resolved (and its config read) when the facility is built, relative to the
    scenario file.
    """
    from twin.catalog.architecture import looks_like_path, resolve_id, shipped_model_ids

    if name in catalog.model_names() or looks_like_path(name):
        return name
    hf = resolve_id(name)
    if hf is not None:
        return hf
    raise ValueError(
        f"unknown model {name!r}; give a catalog name ({', '.join(catalog.model_names())}), a shipped Hugging Face "
        f"id ({', '.join(shipped_model_ids())}) or a path to a config.json"
    )


PROMPT_TOKENS = 1000.0
OUTPUT_TOKENS = 250.0


class Arrivals(StrictModel):
    """Synthetic request arrivals (expected values; a fluid model of the request stream)."""

    kind: Literal["constant", "diurnal"] = "diurnal"
    requests_per_s: Float = Field(gt=0, description="Mean request rate of the whole workload.")
    peak_to_mean: Float = Field(1.0, ge=1.0, le=2.0, description="Diurnal peak rate / mean rate.")
    peak_hour: Float = Field(fluid.PEAK_HOUR, ge=0, lt=24, description="Local hour of the diurnal peak.")
    prompt_tokens: Float = Field(PROMPT_TOKENS, ge=0, description="Mean prompt tokens per request.")
    output_tokens: Float = Field(OUTPUT_TOKENS, gt=0, description="Mean generated tokens per request.")


class TraceArrivals(StrictModel):
    """Requests replayed from a trace file, read once and binned onto the tick grid.

    Each server of the pool receives ``c`` copies' worth of the trace (fractional: a fluid share),
    as ``copies`` superposed copies each circularly shifted by its own offset when ``offsets`` is
    on, with ``c`` chosen so that the pool's mean rate is ``requests_per_s`` (or ``rate_scale``
    times the trace's rate). See :mod:`twin.engine.sources`.
    """

    kind: Literal["trace"]
    path: str = Field(
        description="Trace file, relative to the scenario file, or a built-in name "
        "(azure-llm-2023-conv, azure-llm-2023-code; see twin.workload.BUILTIN_TRACES)."
    )
    format: Literal["azure-llm", "burstgpt", "mooncake"] | None = Field(
        None, description="Reader name; None: sniffed from the header."
    )
    time_scale: Float = Field(1.0, gt=0, description="Stretch arrival times by this factor (2: half the rate).")
    rate_scale: Float | None = Field(None, gt=0, description="Pool rate / trace rate (default 1).")
    requests_per_s: Float | None = Field(None, gt=0, description="Target mean request rate of the whole pool.")
    loop: bool = Field(True, description="Repeat the trace when the run outlasts it (else no requests after).")
    offsets: bool = Field(
        True, description="Shift each server's copy by its own random offset within the period (whole ticks)."
    )
    copies: Int | None = Field(
        None, ge=1, le=64, description="Shifted copies superposed per server (default: the rate's need, at most 8)."
    )

    @model_validator(mode="after")
    def _one_rate(self) -> TraceArrivals:
        if self.rate_scale is not None and self.requests_per_s is not None:
            raise ValueError("give rate_scale or requests_per_s, not both")
        return self


class PoissonArrivals(StrictModel):
    """A homogeneous Poisson stream drawn with the run's random generator."""

    kind: Literal["poisson"]
    requests_per_s: Float = Field(gt=0, description="Mean request rate of the whole pool.")
    prompt_tokens: Float = Field(
        PROMPT_TOKENS, ge=0, description="Prompt tokens of every request (without tokens_from)."
    )
    output_tokens: Float = Field(
        OUTPUT_TOKENS, gt=0, description="Output tokens of every request (without tokens_from)."
    )
    tokens_from: str | None = Field(
        None, description="A request trace (path or built-in name) whose (prompt, output) pairs are resampled."
    )
    offsets: bool = Field(True, description="Shift each server's copy of the drawn stream by its own offset.")


class BurstyArrivals(StrictModel):
    """A bursty stream drawn with the run's generator: Gamma renewal or two-state MMPP."""

    kind: Literal["bursty"]
    process: Literal["gamma", "mmpp"] = "gamma"
    requests_per_s: Float = Field(gt=0, description="Mean request rate of the whole pool.")
    cv: Float | None = Field(
        None, gt=0, description="gamma: coefficient of variation of inter-arrival times (1 = Poisson)."
    )
    burst_factor: Float | None = Field(None, ge=1, description="mmpp: rate in the burst state / rate outside it.")
    mean_low_s: Float | None = Field(None, gt=0, description="mmpp: mean time between bursts.")
    mean_high_s: Float | None = Field(None, gt=0, description="mmpp: mean burst length.")
    prompt_tokens: Float = Field(
        PROMPT_TOKENS, ge=0, description="Prompt tokens of every request (without tokens_from)."
    )
    output_tokens: Float = Field(
        OUTPUT_TOKENS, gt=0, description="Output tokens of every request (without tokens_from)."
    )
    tokens_from: str | None = Field(
        None, description="A request trace (path or built-in name) whose (prompt, output) pairs are resampled."
    )
    offsets: bool = Field(True, description="Shift each server's copy of the drawn stream by its own offset.")

    @model_validator(mode="after")
    def _process_fields(self) -> BurstyArrivals:
        need = ("cv",) if self.process == "gamma" else ("burst_factor", "mean_low_s", "mean_high_s")
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"process {self.process!r} needs {', '.join(missing)}")
        return self


ArrivalSpec = Annotated[
    Arrivals | TraceArrivals | PoissonArrivals | BurstyArrivals,
    Field(discriminator="kind"),
]


class Slo(StrictModel):
    """Latency targets of a pool's requests (DistServe's SLO attainment: a request meets both).

    A target left out does not constrain; at least one is given.
    """

    ttft_s: Float | None = Field(None, gt=0, description="Time-to-first-token target of each request [s].")
    tpot_s: Float | None = Field(None, gt=0, description="Time-per-output-token target of each request [s].")

    @model_validator(mode="after")
    def _one_target(self) -> Slo:
        if self.ttft_s is None and self.tpot_s is None:
            raise ValueError("an slo needs ttft_s, tpot_s or both")
        return self


class Disaggregation(StrictModel):
    """Prefill/decode disaggregation of a serving pool (Splitwise, DistServe; twin.facility_parts.fleet.Disaggregation).

    The pool's first ``prefill_fraction_of_servers`` of its servers run prefill only, the rest
    decode only; each prompt's KV cache crosses the scale-out network between them.
    """

    prefill_fraction_of_servers: Float = Field(
        gt=0, lt=1, description="Share of the pool's servers that prefill (rounded to whole servers; each role >= 1)."
    )
    network_bandwidth_b_s: Float = Field(
        ic.SCALE_OUT_BANDWIDTH_B_S,
        gt=0,
        description="Achieved scale-out bandwidth per GPU [B/s] (default: one 400 Gb/s NIC per GPU, "
        "twin.physics.interconnect.SCALE_OUT_BANDWIDTH_B_S).",
    )
    network_latency_s: Float = Field(
        ic.SCALE_OUT_LATENCY_S, ge=0, description="Latency of one KV transfer besides its bytes [s] [EST]."
    )
    network_energy_pj_per_bit: Float = Field(
        ic.SCALE_OUT_ENERGY_J_PER_BIT * 1e12,
        ge=0,
        description="Energy per bit moved, NICs, optics and switch [pJ/bit] [EST] (booked as server_other).",
    )


class RequestLevel(StrictModel):
    """Request-level latency KPIs of a run: a sample of each inference pool's ranks replayed (twin.latency)."""

    ranks: Int = Field(4, gt=0, description="Attention ranks replayed per inference pool (a declared sample).")
    window_s: Float | None = Field(
        600.0, gt=0, description="Length of the replayed window [s], cut at the run's end; None: the whole run."
    )
    start_s: Float | None = Field(
        None, ge=0, description="Start of the window [s]; None: the report interval with the most requests."
    )


class InferenceWorkload(StrictModel):
    """An LLM served on a pool of servers."""

    kind: Literal["inference"] = "inference"
    name: str
    model: str = Field(
        description="Catalog name, shipped Hugging Face id, or path to a config.json (twin.catalog.architecture)."
    )
    servers: Int | None = Field(None, gt=0, description="Servers in the pool (None: all not yet taken).")
    tensor_parallel: Int = Field(1, gt=0, description="GPUs a replica's attention and dense layers are split over.")
    expert_parallel: bool = Field(
        False, description="Spread whole experts over the replica's GPUs (vLLM --enable-expert-parallel)."
    )
    data_parallel: Int = Field(
        1,
        gt=0,
        description="Data-parallel attention ranks sharing the experts (with expert_parallel); a replica then has "
        "tensor_parallel x data_parallel GPUs. Independent replicas need no setting: each server holds its own.",
    )
    max_batch: Int = Field(256, gt=0, description="Sequences a replica runs at once (vLLM max_num_seqs).")
    max_batched_tokens: Int = Field(
        8192, gt=0, description="Tokens per step of one rank, decode plus prefill chunks (vLLM max_num_batched_tokens)."
    )
    precision: Literal["bf16", "fp8"] | None = Field(
        None, description="Weight format; None: the model's own (its config's dtype and quantization)."
    )
    kv_precision: Literal["bf16", "fp8"] = Field("bf16", description="KV-cache format (vLLM --kv-cache-dtype).")
    slo: Slo | None = Field(
        None, description="TTFT/TPOT targets: SLO attainment and goodput KPIs of the request-level replay."
    )
    disaggregation: Disaggregation | None = Field(
        None, description="Separate prefill and decode servers with KV transfer between them (None: mixed serving)."
    )
    arrivals: ArrivalSpec

    @model_validator(mode="before")
    @classmethod
    def _default_arrival_kind(cls, data: Any) -> Any:
        arr = data.get("arrivals") if isinstance(data, dict) else None
        if isinstance(arr, dict) and "kind" not in arr:
            data = {**data, "arrivals": {**arr, "kind": "diurnal"}}
        return data

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _known_model_name(name)

    @model_validator(mode="after")
    def _layout(self) -> InferenceWorkload:
        if self.data_parallel > 1 and not self.expert_parallel:
            raise ValueError(
                "data_parallel > 1 needs expert_parallel: true (data-parallel attention ranks share experts); "
                "independent replicas need no setting"
            )
        return self

    @property
    def gpus_per_replica(self) -> int:
        """GPUs in one replica."""
        return self.tensor_parallel * self.data_parallel


class JobColumns(Overrides):
    """Source columns of a job trace's standard columns (unset: found by the reader's built-in names).

    The standard names are those of :data:`twin.workload.jobs.VARIABLE_MAP` (an end or a duration).
    """

    job_id: str | None = Field(None, min_length=1, description="Job identifier.")
    start_s: str | None = Field(None, min_length=1, description="Start time (date-time text or a number).")
    end_s: str | None = Field(None, min_length=1, description="End time (date-time text or a number).")
    duration_s: str | None = Field(None, min_length=1, description="Run time, used where no end column is given.")
    gpus: str | None = Field(None, min_length=1, description="GPUs the job holds.")
    priority: str | None = Field(None, min_length=1, description="Scheduling priority (higher runs first).")
    walltime_s: str | None = Field(None, min_length=1, description="Requested run time the backfill plans with.")


class JobTrace(StrictModel):
    """A job trace (start, end, GPU count per job) that sets how many of a pool's GPUs train."""

    path: str = Field(description="Job trace CSV, relative to the scenario file, or a built-in name.")
    columns: JobColumns = Field(
        default_factory=JobColumns, description="Standard name (start_s, end_s, duration_s, gpus) -> source column."
    )
    time_unit_s: Float = Field(1.0, gt=0, description="Seconds per unit of numeric time columns.")
    time_scale: Float = Field(1.0, gt=0, description="Stretch job times by this factor.")
    loop: bool = Field(False, description="Repeat the trace (period: the last job end) when the run outlasts it.")
    scheduler: Literal["none", "fcfs", "easy", "priority", "priority_easy"] = Field(
        "none",
        description="Queue jobs that do not fit (start times read as submit times): first come first served, "
        "EASY backfill, highest priority first (with EASY backfill: priority_easy); none: jobs run from their start "
        "and GPUs beyond the pool are only reported.",
    )


class TrainingWorkload(StrictModel):
    """A training job: throughput from 6N FLOPs per token at an achieved MFU."""

    kind: Literal["training"] = "training"
    name: str
    model: str
    servers: Int | None = Field(None, gt=0)
    mfu: Float = Field(0.40, gt=0, le=1)
    mem_activity: Float = Field(
        0.5, ge=0, le=1, description="[EST] HBM activity of training steps (fraction of achievable bandwidth)."
    )
    precision: Literal["bf16", "fp8"] | None = Field(
        None, description="Weight format; None: the model's own (its config's dtype and quantization)."
    )
    pipeline_parallel: Int = Field(1, gt=0, description="Pipeline stages of the training job.")
    microbatches: Int = Field(
        8, gt=0, description="[EST] Micro-batches per step: the pipeline bubble is (p - 1) / (m + p - 1)."
    )
    jobs: JobTrace | None = Field(
        None, description="Jobs from a trace occupy the pool's GPUs (packed onto servers); None: one steady job."
    )
    checkpoint_interval_s: Float = Field(1800.0, gt=0, description="[EST] work since the last one is lost on a fault.")
    checkpoint_stall_s: Float = Field(0.0, ge=0, description="Training pauses this long to write each checkpoint.")
    restart_s: Float = Field(600.0, ge=0, description="[EST] fault to training again from the last checkpoint.")

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _known_model_name(name)


class TelemetryWorkload(StrictModel):
    """Measured GPU utilisation (or power) replayed on a pool's GPUs.

    Each sample's activity is ``busy = u``, ``mem = mem_activity_per_busy * u``,
    ``sm = sm_activity_per_busy * u``; with the defaults (1, 1) the accelerator model reduces to
    the linear utilisation model ``P = P_idle + (P_max - P_idle) u`` at boost clock. Where only
    power is recorded, ``u`` is found by inverting that model.
    """

    kind: Literal["telemetry"]
    name: str
    servers: Int | None = Field(None, gt=0)
    path: str = Field(description="nvidia-smi, DCGM or harness CSV, relative to the scenario file, or a built-in name.")
    format: Literal["nvidia-smi", "dcgm", "harness"] | None = Field(None, description="None: sniffed from the header.")
    signal: Literal["auto", "utilization", "power"] = Field(
        "auto", description="What drives the GPUs; auto: utilisation where recorded, else power."
    )
    time_scale: Float = Field(1.0, gt=0, description="Stretch sample times by this factor.")
    loop: bool = Field(True, description="Repeat the trace when the run outlasts it (else idle after).")
    offsets: bool = Field(
        True, description="Shift each server's copy by its own random offset within the period (whole ticks)."
    )
    mem_activity_per_busy: Float = Field(1.0, ge=0, le=1, description="HBM activity per unit of utilisation.")
    sm_activity_per_busy: Float = Field(1.0, ge=0, le=1, description="SM activity per unit of utilisation.")


Workload = Annotated[InferenceWorkload | TrainingWorkload | TelemetryWorkload, Field(discriminator="kind")]
