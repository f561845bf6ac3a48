"""Published measurements (parameters.md section 7) set up from their stated conditions.

Each anchor is one small function: it builds a scenario from the published conditions (or calls
the physics directly where the figure is device-level), runs the twin with its one set of default
parameters and returns an :class:`~twin.validation.compare.AnchorResult` with the predicted and
published values, the relative error (0 inside a published range, the distance to the nearest
end otherwise) and whether it lands within +-25 %. Nothing is tuned per case: where a published
condition is not given, the anchor says which value it used and why, and the notes give the
sensitivity. A case the twin misses stays in the table with the reason; a case the twin cannot
express at all is listed in :data:`NOT_EXPRESSIBLE` instead of being faked.

The anchors that run one accelerator or replica are in :mod:`twin.validation.serving_anchors`,
those that run servers, rooms or sites in :mod:`twin.validation.facility_anchors`; the building
blocks they share in :mod:`twin.validation.setups`.

:func:`run_anchors` runs them all (about 10 s; the annual PUE run is most of it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twin.validation.compare import AnchorResult, NotExpressible
from twin.validation.facility_anchors import (
    hyperscale_pue,
    latif_dgx_h100_training,
    nvidia_hopper_tokens_per_mw,
    opengate_5kw_shutdown,
    opengate_10kw_shutdown,
    smc_immersion_h100_lora,
)
from twin.validation.serving_anchors import (
    ma_h200_clock_lock_saving,
    ma_h200_decode_power,
    ml_energy_llama8b_h100,
    mlperf_h200_llama2_70b,
    samsi_power_cap_energy,
    samsi_power_cap_latency,
)
from twin.validation.setups import PARAMS

ANCHORS: dict[str, Callable[[], AnchorResult]] = {
    "ml-energy-llama8b-h100": ml_energy_llama8b_h100,
    "latif-dgx-h100-training": latif_dgx_h100_training,
    "smc-immersion-h100-lora": smc_immersion_h100_lora,
    "ma-h200-decode-power": ma_h200_decode_power,
    "ma-h200-clock-lock-saving": ma_h200_clock_lock_saving,
    "mlperf-h200-llama2-70b": mlperf_h200_llama2_70b,
    "samsi-power-cap-energy": samsi_power_cap_energy,
    "samsi-power-cap-latency": samsi_power_cap_latency,
    "hyperscale-pue": hyperscale_pue,
    "opengate-5kw-shutdown": opengate_5kw_shutdown,
    "opengate-10kw-shutdown": opengate_10kw_shutdown,
    "nvidia-hopper-tokens-per-mw": nvidia_hopper_tokens_per_mw,
}

#: Published cases of parameters.md section 7 the twin cannot set up honestly.
NOT_EXPRESSIBLE: tuple[NotExpressible, ...] = (
    NotExpressible(
        "latif-batch-size-energy",
        "ResNet batch 512 -> 4096 cut training energy 4x",
        f"Latif et al. 2025 ({PARAMS} 7.1)",
        "CNN training and the effect of batch size on convergence (steps to accuracy) are not modelled.",
    ),
    NotExpressible(
        "ml-energy-v2-llama8b",
        "0.20 J/token under v2.0 (vLLM 0.5.4)",
        f"ML.ENERGY ({PARAMS} 5.1, 7.2)",
        "software-stack versions are not a twin input: one per-step overhead stands for the serving engine.",
    ),
    NotExpressible(
        "ml-energy-reasoning-25x",
        "reasoning vs chat: 25x energy per response on B200",
        f"ML.ENERGY v3.0 ({PARAMS} 5.1, 7.3)",
        "the models, response lengths and minimum-energy configurations behind the 25x are not named in our "
        "sources (the ML.ENERGY v3 runs the twin is validated on are compared per token in twin validate-serving).",
    ),
    NotExpressible(
        "samsi-j-per-token",
        "LLaMA-65B: 3-4 J per decoded token on V100/A100",
        f"Samsi et al. 2023 ({PARAMS} 5.1, 7.4)",
        "the batch size and GPU count behind the figure are not in the secondary summary we hold, and J/token "
        "moves 20x across batch 1-64 in the twin; V100 is not in the catalog.",
    ),
    NotExpressible(
        "google-gemini-prompt",
        "median Gemini text prompt 0.24 Wh (58/25/10/8 % split)",
        f"Google Aug 2025 ({PARAMS} 5.1, 7.6)",
        "model, accelerator (TPU), batching and prompt lengths are undisclosed.",
    ),
    NotExpressible(
        "azure-gb200-nvl72-llama2-70b",
        "GB200 NVL72 rack, Llama 2 70B offline: 865 000 tokens/s",
        f"Azure ND GB200 v6, MLPerf v4.1 (unverified) ({PARAMS} 7.7)",
        "Blackwell submissions run NVFP4 weights and activations, which the twin does not model (BF16 and FP8; "
        "MXFP4 only for expert weights); the result is unverified.",
    ),
    NotExpressible(
        "mlperf-b200",
        "8x B200: Llama 2 70B ~103k tokens/s; Llama 3.1 8B ~147k tokens/s",
        f"MLPerf v5.1 NVIDIA ({PARAMS} 7.8)",
        "NVFP4 weights and activations are not modelled (MXFP4 only for expert weights, as gpt-oss ships).",
    ),
    NotExpressible(
        "meta-kw-per-gpu",
        "about 1.8 kW facility power per GB200 GPU; perf/W optimum near 1000 W",
        f"Ardestani et al., arXiv 2605.24461 ({PARAMS} 1.2, 7.9)",
        "150 MW is provisioned capacity including network and storage, not measured power; the cluster "
        "workload behind the perf/W optimum is not given.",
    ),
    NotExpressible(
        "dynamollm-savings",
        "-53 % energy / -38 % carbon / -61 % cost at fixed SLOs",
        f"DynamoLLM, arXiv 2408.00741 ({PARAMS} 5.1, 7.10)",
        "needs the reconfiguration controller (instances, parallelism, frequency), which the twin lacks.",
    ),
    NotExpressible(
        "polca-oversubscription",
        "+30 % servers under the same inference power budget",
        f"POLCA, ASPLOS'24 ({PARAMS} 5.1, 7.11)",
        "needs a power-oversubscription controller and the production load trace.",
    ),
    NotExpressible(
        "nvidia-blackwell-per-mw",
        "GB200 NVL72 10x, GB300 NVL72 50x tokens/s per MW vs Hopper (GPT-OSS-120B)",
        f"NVIDIA (vendor) ({PARAMS} 5.2, 7.12)",
        "GPT-OSS-120B and FP4 are not in the catalog; GB300 is not in the catalog.",
    ),
    NotExpressible(
        "wue-hyperscale",
        "Meta WUE 0.26 L/kWh, Microsoft 0.27 L/kWh; industry PUE 1.58, WUE 1.8 L/kWh",
        f"{PARAMS} 3.5, 7.13",
        "direct evaporative / adiabatic air cooling is not modelled (only towers and dry coolers), and the "
        "industry-average fleet mix is not specified.",
    ),
    NotExpressible(
        "dlc-failure-shutdown",
        "direct liquid cooling failure: shutdown in < 1 min",
        f"InterPACK 2017 ({PARAMS} 4, 7.14)",
        "a loss of coolant flow is not modelled: the twin's loop node is the whole mixed loop volume, which "
        "stands for a loss of heat rejection, not for a stalled cold plate.",
    ),
)


def run_anchors(keys: Iterable[str] | None = None) -> list[AnchorResult]:
    """Run the anchors named in ``keys`` (all by default), in table order.

    Raises
    ------
    twin.errors.UnknownNameError
        For a key that is not in :data:`ANCHORS`.
    """
    from twin.errors import UnknownNameError

    wanted = list(ANCHORS) if keys is None else list(keys)
    for key in wanted:
        if key not in ANCHORS:
            raise UnknownNameError("anchor", key, list(ANCHORS))
    return [ANCHORS[key]() for key in ANCHORS if key in wanted]


__all__ = ["ANCHORS", "NOT_EXPRESSIBLE", "run_anchors"]
