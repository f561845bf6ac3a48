"""Consistency checks of a built facility: ``check_*(facility) -> list[str]``.

They run after building and before simulating (PyPSA's ``consistency_check`` pattern). A finding is
a warning by default, since oversubscription is a legitimate what-if; ``strict=True`` raises
:class:`~twin.errors.ConsistencyError`.
"""

from __future__ import annotations

import numpy as np

from twin import catalog
from twin.catalog.serving_accuracy import ServingAccuracy, serving_accuracy, validated_accelerators
from twin.errors import ConsistencyError
from twin.facility_parts.fleet import Facility
from twin.facility_parts.plant import PlantSpec
from twin.facility_parts.sources import DrawnRequests, FluidRequests
from twin.physics.plant_params import ASHRAE_AIR_CLASSES
from twin.replica import kv_capacity_sequences
from twin.scenario.workload_schema import RequestLevel


def check_power_cap(fac: Facility) -> list[str]:
    """The GPU power cap lies within the accelerator's settable range."""
    cap = fac.power_cap_w
    acc = fac.accelerator
    if cap is None or acc.power_cap_min_w <= cap <= acc.power_cap_max_w:
        return []
    return [
        f"fleet.power_cap_w = {cap:g} W is outside {acc.name}'s settable range "
        f"{acc.power_cap_min_w:g}-{acc.power_cap_max_w:g} W"
    ]


def check_model_fits(fac: Facility) -> list[str]:
    """Each replica's cache at max batch fits the HBM its weights leave.

    The cache of ``max_batch`` sequences at the full prompt-plus-output context must fit what
    vLLM leaves for it (:func:`twin.replica.kv_capacity_sequences`); beyond that a real engine
    preempts and the twin's batch is optimistic.
    """
    issues = []
    for pool in fac.pools:
        arr = pool.requests
        if pool.kind != "inference" or arr is None or pool.model is None:
            continue
        # Traces (and resampled lengths) are not checked here: check the weights alone for them.
        ctx = 0.0
        if isinstance(arr, FluidRequests) or (isinstance(arr, DrawnRequests) and arr.tokens is None):
            ctx = arr.prompt_tokens + arr.output_tokens
        w = pool.weight_bytes_per_gpu  # weights that leave no room for a cache are an error (twin.facility)
        fits = kv_capacity_sequences(
            pool.model, pool.layout, fac.accelerator, max(ctx, 1.0), pool.precision, pool.kv_bytes_per_value
        )
        if ctx > 0 and fits < pool.max_batch:
            issues.append(
                f"workload {pool.name}: the KV cache of max_batch {pool.max_batch:g} sequences at {ctx:g} tokens does "
                f"not fit beside {w / 1e9:.0f} GB of weights per GPU (room for {fits:.0f}); lower max_batch"
            )
    return issues


#: Most a UPS, PDU or PSU carries over its rating, as a share of it. [-] Double-conversion UPSs
#: are rated for 125 % load for 10 min and 150 % for 1 min (e.g. Eaton 93PM, Schneider Galaxy VX
#: data sheets); beyond that they transfer to bypass or trip, and no loss curve is measured there.
#: Transformers share the bound (IEEE C57.91 long-time emergency loading of 120-150 %).
MAX_OVERLOAD = 1.5


def check_power_chain_capacity(fac: Facility) -> list[str]:
    """Each stage, with its redundant units out, carries the nameplate peak of what it feeds.

    Raises
    ------
    ConsistencyError
        A stage whose nameplate load exceeds :data:`MAX_OVERLOAD` times what it carries: the twin
        would price losses far outside any unit's operating range (``power.ups.rated_w=1`` ran to
        a PUE of 71 290).
    """
    acc = fac.accelerator
    # What each stage delivers at nameplate: the IT below it plus the losses of the stages between
    # (a PSU rated 3e10 W loses gigawatts at no load, which the UPS above it must carry).
    server_w = fac.gpus_per_server * acc.max_power_w + fac.server.other_max_power_w
    rack_w = float(server_w + fac.stages["psu"].loss_w(np.array(server_w, dtype=np.float64))) * fac.servers_per_rack
    site_w = float(rack_w + fac.stages["pdu"].loss_w(np.array(rack_w, dtype=np.float64))) * fac.n_racks
    issues = []
    for name, load_w, per in (("psu", server_w, "server"), ("pdu", rack_w, "rack"), ("ups", site_w, "site")):
        st = fac.stages[name]
        capacity = st.units_needed * st.rated_w
        if load_w > MAX_OVERLOAD * capacity:
            raise ConsistencyError(
                f"power.{name}: nameplate peak {load_w / 1e3:,.1f} kW per {per} is {load_w / capacity:.3g} times the "
                f"{st.units_needed} x {st.rated_w / 1e3:,.1f} kW available under {st.redundancy}; no unit "
                f"carries more than {MAX_OVERLOAD:.0%} of its rating (it transfers to bypass or trips): raise "
                f"power.{name}.rated_w or count"
            )
        if load_w > capacity:
            issues.append(
                f"power.{name}: nameplate peak {load_w / 1e3:,.1f} kW per {per} exceeds "
                f"{st.units_needed} x {st.rated_w / 1e3:,.1f} kW available under {st.redundancy} "
                f"({load_w / capacity - 1:.0%} oversubscribed)"
            )
    for name in ("ups", "transformer"):
        st = fac.stages[name]
        if site_w < 0.1 * st.count * st.rated_w:
            issues.append(
                f"power.{name}: nameplate peak {site_w / 1e3:,.0f} kW is under 10 % of the "
                f"{st.count} x {st.rated_w / 1e3:,.0f} kW installed; its no-load loss will dominate"
            )
    tx = fac.stages["transformer"]
    if site_w > MAX_OVERLOAD * tx.count * tx.rated_w:  # IEEE C57.91 long-time emergency loading stays below
        raise ConsistencyError(
            f"power.transformer: nameplate IT peak {site_w / 1e6:.3g} MW is {site_w / (tx.count * tx.rated_w):.3g} "
            f"times the {tx.count * tx.rated_w / 1e6:.3g} MW installed; a transformer carries at most "
            f"{MAX_OVERLOAD:.0%} of its rating: raise power.transformer.rated_w or count"
        )
    if site_w > tx.count * tx.rated_w:
        issues.append(
            f"power.transformer: nameplate IT peak {site_w / 1e6:.2f} MW exceeds {tx.count * tx.rated_w / 1e6:.2f} MW"
        )
    return issues


def check_multimodal(fac: Facility) -> list[str]:
    """A multimodal model serves its language model only: say so (images and video are not modelled)."""
    return [
        f"workload {pool.name}: {pool.model.name} is multimodal; the twin serves its language model (text "
        "prompts only: the vision and audio encoders and their tokens are not modelled)"
        for pool in fac.pools
        if pool.model is not None and pool.model.multimodal
    ]


def serving_error(fac: Facility) -> ServingAccuracy | None:
    """The measured error of the serving model on the facility's accelerator, where it applies.

    None where no pool serves, where the project has no measured serving runs on the accelerator,
    or where the accelerator is not the catalog's entry of that name (``accelerator_overrides``
    or an ``accelerator_file``): the error was measured on the catalog's device.
    """
    if not fac.served_pools():
        return None
    acc = fac.accelerator
    found = serving_accuracy(acc.name)
    if found is None or acc.name not in catalog.accelerator_names() or acc != catalog.accelerator_spec(acc.name):
        return None
    return found


def check_serving_validated(fac: Facility) -> list[str]:
    """A serving run on an accelerator whose serving model has no measured error: say so.

    Every run that serves states the serving model's measured error on its accelerator
    (:func:`serving_error`, :mod:`twin.catalog.serving_accuracy`); where there is none, its tokens
    and energy per token come with no stated error, and the run warns.
    """
    pools = fac.served_pools()
    if not pools or serving_error(fac) is not None:
        return []
    acc = fac.accelerator.name
    measured = ", ".join(validated_accelerators())
    if serving_accuracy(acc) is not None:
        why = (
            f"the serving model's error was measured on the catalog's {acc}, and this one is changed "
            "(accelerator_overrides or accelerator_file)"
        )
    else:
        why = f"the project has no measured serving runs on {acc} (its measured runs are on {measured})"
    names = ", ".join(p.name for p in pools)
    label, their = ("workload", "its") if len(pools) == 1 else ("workloads", "their")
    return [
        f"{label} {names}: {why}, so {their} tokens/s and J/token carry no stated error (published anchors: "
        "twin validate-anchors)"
    ]


def check_workloads(fac: Facility) -> list[str]:
    """A scenario without workloads runs, idle: say so (``workloads: []`` is a legitimate idle baseline).

    An empty scenario file is refused by the loader (:mod:`twin.scenario.loader`); one that sets no
    workloads, or an empty list, gets this warning from ``twin validate`` and ``twin run``.
    """
    if fac.pools:
        return []
    return [
        f"no workloads: all {fac.n_servers} servers idle for the whole run; add workloads: (or start from "
        "base: default)"
    ]


#: Room air this far above the A4 allowable maximum, with every server off, is beyond what the
#: room model can tell: it holds the white space's air and the racks' steel (plus
#: ``cooling.room_extra_heat_capacity_j_k_per_rack`` and, behind a conductance,
#: ``cooling.server_heat_capacity_j_k``; both 0 by default), not the equipment's and building's
#: mass, which would keep an uncooled room far cooler once only the power distribution's losses
#: heat it. [K]
ROOM_MODEL_MARGIN_K = 15.0


def check_room_air(fac: Facility, room_excess_max_k: float) -> list[str]:
    """After a run: room air, with every server off, that the room model cannot stand behind.

    ``room_excess_max_k`` is the room's largest excess over the CRAH supply air while no server was
    up (:data:`ROOM_MODEL_MARGIN_K`).
    """
    if not isinstance(fac.cooling, PlantSpec):
        return []
    limit_c = ASHRAE_AIR_CLASSES["A4"][1] + ROOM_MODEL_MARGIN_K
    room_air_max_c = fac.cooling.params.crah_supply_air_c + room_excess_max_k
    if not room_air_max_c > limit_c:
        return []
    return [
        f"room air reached {room_air_max_c:.0f} C with every server off, beyond the room model's range "
        f"(over {limit_c:.0f} C): it holds the room's air and the racks' steel, not the servers' and building's "
        "mass, so the room "
        "temperature from there on is an overestimate (cooling.server_heat_capacity_j_k and "
        "cooling.room_extra_heat_capacity_j_k_per_rack add that mass)"
    ]


#: CPU seconds one replayed rank costs per simulated second: 0.18 ms per scheduler step at about
#: 30 ms per serving step, measured for twin.serving_requests on this project's 2-core CI machine.
REPLAY_CPU_S_PER_RANK_S = 6e-3
#: Replay cost above which validate and run say what a request-level sample will take. [s]
REPLAY_WARN_CPU_S = 300.0


def check_request_level(fac: Facility, spec: RequestLevel | None) -> list[str]:
    """A request-level sample that will take long: its ranks times its window, at the measured cost."""
    if spec is None:
        return []
    window_s = fac.run.duration_s if spec.window_s is None else min(spec.window_s, fac.run.duration_s)
    ranks = 0
    for p in fac.pools:
        if p.kind == "inference":  # a disaggregated pool replays prefill and decode ranks
            k_p, k_d = p.role_sample(spec.ranks)
            ranks += k_p if p.disaggregation is None else k_p + k_d
    cost_s = ranks * window_s * REPLAY_CPU_S_PER_RANK_S
    if cost_s <= REPLAY_WARN_CPU_S:
        return []
    return [
        f"request_level: {ranks} ranks replayed request by request over {window_s:g} s will take about "
        f"{cost_s / 60:.0f} min of CPU; fewer ranks (request_level.ranks) or a shorter window_s keep it short"
    ]


CHECKS = (
    check_workloads,
    check_power_cap,
    check_model_fits,
    check_power_chain_capacity,
    check_multimodal,
    check_serving_validated,
)


def run_checks(fac: Facility, strict: bool = False, request_level: RequestLevel | None = None) -> list[str]:
    """Run every check, and the scenario's ``request_level`` cost; ``strict`` raises on any finding.

    With ``strict`` a finding raises :class:`ConsistencyError` instead of being returned.
    """
    issues = [issue for check in CHECKS for issue in check(fac)] + check_request_level(fac, request_level)
    if strict and issues:
        raise ConsistencyError("; ".join(issues))
    return issues
