"""Routed experts in a serving step: the experts a step's tokens touch, the busiest GPU, a stream's mean.

A mixture-of-experts layer routes each token to ``k`` of its ``E`` experts. A step reads every
expert some token in it picked (:func:`experts_touched_fraction`); with experts spread whole over
``G`` GPUs (expert parallel) the step waits for the GPU that touched the most of its experts and
got the most tokens (:func:`busiest_share`), and prompts arriving whole make the steps alternate
between decode-only ones and ones carrying a prompt, whose mean read is less than the mean step's
(:func:`expert_mean`). The step model (:mod:`twin.physics.serving`) adds the result to its dense,
attention, collective and host terms.
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric
from twin.physics.step_costs import ServingDevice, StepCosts, roofline_time_s


def experts_touched_fraction(
    tokens: Numeric, n_experts: Numeric, experts_per_token: Numeric, skew: Numeric = 0.0
) -> FloatArray:
    """Share of a layer's experts that ``tokens`` tokens touch (an expert is read if any token picks it).

    Parameters
    ----------
    tokens : numeric
        Tokens in the step, ``T``. [1]
    n_experts, experts_per_token : numeric
        ``E`` and ``k``. [1]
    skew : numeric
        Squared coefficient of variation of the experts' popularity, ``s`` (0: uniform routing). [1]

    Returns
    -------
    numpy.ndarray
        Uniform routing: ``1 - (1 - k/E)**T``. With popularity spread as a gamma distribution of
        squared coefficient of variation ``s`` (routers are not uniform: a few experts draw more
        tokens, which is why expert-parallel engines rebalance them [1]_), the mean over experts
        of ``1 - exp(-T r)``: ``1 - (1 + s T r)**(-1/s)`` with ``r = -ln(1 - k/E)``, fewer than
        uniform. [1]

    References
    ----------
    .. [1] DeepSeek-AI, EPLB README (expert-parallel load balancer: "different experts may have
       varying loads"), github.com/deepseek-ai/EPLB.

    Examples
    --------
    One token of Mixtral (2 of 8) reads a quarter of the experts; 256 tokens read all; skewed
    routing touches fewer at 10 tokens:

    >>> experts_touched_fraction([1, 256], 8, 2).round(6)
    array([0.25, 1.  ])
    >>> experts_touched_fraction(10, 128, 8, [0.0, 1.0]).round(3)
    array([0.476, 0.392])
    """
    t = np.maximum(np.asarray(tokens, dtype=np.float64), 0.0)
    miss = np.clip(
        1.0 - np.asarray(experts_per_token, dtype=np.float64) / np.asarray(n_experts, dtype=np.float64), 0, 1
    )
    s = np.asarray(skew, dtype=np.float64)
    uniform = 1.0 - np.power(miss, t)
    rate = -np.log(np.maximum(miss, 1e-300))
    skewed = 1.0 - np.power(1.0 + np.maximum(s, 1e-12) * t * rate, -1.0 / np.maximum(s, 1e-12))
    return np.asarray(np.where(s > 0, skewed, uniform))


def busiest_share(mean: Numeric, sd: Numeric, gpus: Numeric) -> FloatArray:
    """Expected largest of ``gpus`` loads with a given mean and spread (Blom's approximation).

    An expert-parallel step waits for its busiest GPU. With each GPU's load near-normal,
    ``E[max] = mean + sd * z`` with ``z = Phi^-1((G - 0.375) / (G + 0.25))`` [1]_ (0 for one GPU).

    Parameters
    ----------
    mean, sd : numeric
        Mean and standard deviation of one GPU's load. [any]
    gpus : numeric
        GPUs, ``G``. [1]

    Returns
    -------
    numpy.ndarray
        [same unit as ``mean``]

    References
    ----------
    .. [1] G. Blom, *Statistical Estimates and Transformed Beta-Variables*, Wiley, 1958
       (plotting position ``(i - 3/8) / (n + 1/4)``; for ``n = 2, 4, 8`` it gives 0.59, 1.04,
       1.43 against the exact 0.56, 1.03, 1.42 standard deviations).

    Examples
    --------
    >>> busiest_share(10.0, 2.0, [1, 2, 8]).round(2)
    array([10.  , 11.18, 12.87])
    """
    from scipy.special import ndtri

    g = np.maximum(np.asarray(gpus, dtype=np.float64), 1.0)
    z = np.where(g > 1.0, ndtri((g - 0.375) / (g + 0.25)), 0.0)
    return np.asarray(np.asarray(mean, dtype=np.float64) + np.asarray(sd, dtype=np.float64) * z)


def expert_mean(
    c: StepCosts,
    dev: ServingDevice,
    decode: FloatArray,
    prefill: FloatArray,
    prompt_tokens: Numeric | None,
    f: FloatArray,
    n: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`_expert_group` of one step, or the mean over a stream whose prompts arrive whole.

    An engine admits a prompt whole (chunked only past its token budget), so with ``C`` prompt
    tokens per step on average, prompts of ``P`` tokens, the steps carry ``N ~ Poisson(C / P)``
    of them [1]_. The experts a step reads saturate in its tokens (:func:`experts_touched_fraction`):
    a step that prefills reads nearly all of them, the steps between read only what the decode
    batch touches, and the mean read is less than the read of the mean step. Two points carry
    it: the share ``exp(-C / P)`` of steps with no prompt, and the others with
    ``C / (1 - exp(-C / P))`` prompt tokens, which keeps the mean tokens ``C``. With ``P``
    unknown (``None``), or no decode batch (a prefill-only step always carries its prompts), the
    one step carrying ``C``.

    References
    ----------
    .. [1] W. Kwon et al., SOSP 2023, and the vLLM V1 scheduler (a waiting request is scheduled
       with its whole prompt when the token budget allows).

    Examples
    --------
    Qwen3-30B-A3B-like experts (128, 8 per token, uniform routing), 8 decoding sequences and 40
    prompt tokens a step in prompts of 1 280. One step reading for 48 tokens touches
    ``1 - (120/128)**48 = 0.955`` of the experts. Whole prompts: ``exp(-1/32) = 0.969`` of the
    steps touch ``1 - (120/128)**8 = 0.403``, the rest (1 308 tokens) all, a mean of 0.422:

    >>> import numpy as np
    >>> from dataclasses import replace
    >>> from twin.physics.step_costs import example_costs, example_device
    >>> c = replace(example_costs(), expert_bytes=np.array(57.98e9), n_experts=np.array(128.0),
    ...             experts_per_token=np.array(8.0), expert_flops_per_token=np.array(3.6e9))
    >>> d, one = example_device(), np.ones(())
    >>> fluid = expert_mean(c, d, 8.0 * one, 40.0 * one, None, one, one)[0]
    >>> whole = expert_mean(c, d, 8.0 * one, 40.0 * one, 1280.0, one, one)[0]
    >>> round(float(fluid / 57.98e9), 3), round(float(whole / 57.98e9), 3)
    (0.955, 0.422)
    """
    if prompt_tokens is None:
        return _expert_group(c, dev, decode + prefill, f, n)
    arrivals = np.divide(prefill, prompt_tokens, out=np.zeros_like(prefill * decode), where=prompt_tokens > 0)
    mixed = (decode > 0) & (arrivals > 0)
    if not np.any(mixed):
        return _expert_group(c, dev, decode + prefill, f, n)
    quiet = np.where(mixed, np.exp(-arrivals), 0.0)  # share of steps without a prompt
    with_prompt = np.where(mixed, prefill / np.where(mixed, -np.expm1(-arrivals), 1.0), prefill)
    none = _expert_group(c, dev, decode + 0.0 * prefill, f, n)
    some = _expert_group(c, dev, decode + with_prompt, f, n)
    out = tuple(np.asarray(quiet * a + (1.0 - quiet) * b) for a, b in zip(none, some, strict=True))
    return out[0], out[1], out[2], out[3]


def _expert_group(
    c: StepCosts, dev: ServingDevice, tokens: FloatArray, f: FloatArray, n: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Experts' bytes, FLOPs and time of a step on the mean GPU, and the busiest GPU's time.

    An expert-parallel step waits for its busiest GPU (that time sets the step's); the others'
    kernels end sooner, and a GPU's power follows its own work.
    """
    g = c.expert_gpus
    held = c.n_experts / g  # experts per GPU
    skew = dev.expert_routing_skew
    q = experts_touched_fraction(tokens * c.expert_token_scale, c.n_experts, c.experts_per_token, skew)
    touched = np.minimum(busiest_share(held * q, np.sqrt(held * q * (1.0 - q)), g), held)
    per_expert = np.divide(c.expert_bytes, held, out=np.zeros_like(held * q), where=held > 0)
    busiest_read = per_expert * touched
    mean_read = per_expert * held * q
    picks = tokens * c.expert_token_scale * c.experts_per_token / g  # expert-token pairs per GPU
    spread = np.sqrt(picks + skew * picks**2 / np.maximum(held, 1.0))  # multinomial plus popularity spread
    heavy = np.divide(busiest_share(picks, spread, g), picks, out=np.ones_like(picks), where=picks > 0)
    mean_flops = tokens * c.expert_flops_per_token
    bw, fl = dev.expert_bandwidth_b_s, dev.expert_flop_s * f
    t_busiest = roofline_time_s(busiest_read / bw, mean_flops * heavy / fl, n)
    t_mean = roofline_time_s(mean_read / bw, mean_flops / fl, n)
    return mean_read, mean_flops, t_busiest, t_mean
