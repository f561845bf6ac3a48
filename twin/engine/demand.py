"""Request demand per tick for each pool, mapped onto the pool's servers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin._types import FloatArray
from twin.facility import Facility
from twin.scenario.schema import InferenceWorkload
from twin.workload.fluid import expected_arrivals


@dataclass
class Demand:
    """``(K, S)`` arrays of tokens arriving per server and the sequence lengths they imply."""

    requests: FloatArray
    prefill_tokens: FloatArray
    decode_tokens: FloatArray
    prompt_len: FloatArray
    context_len: FloatArray


class DemandModel:
    """Expected arrivals of each inference pool, spread evenly over the pool's servers."""

    def __init__(self, fac: Facility) -> None:
        self.fac = fac
        start = fac.scenario.start
        self.start_hour = start.hour + start.minute / 60.0 + start.second / 3600.0
        self.pools = [p for p in fac.pools if isinstance(p.spec, InferenceWorkload)]

    @property
    def varies(self) -> bool:
        """True when some input changes within a tick grid (a tick-by-tick advance is needed)."""
        return any(p.spec.arrivals.kind != "constant" for p in self.pools)  # type: ignore[union-attr]

    def block(self, t0: FloatArray, t1: FloatArray) -> Demand:
        """Demand over the ticks ``[t0[k], t1[k])``."""
        n_k, n_s = t0.size, self.fac.n_servers
        out = {k: np.zeros((n_k, n_s)) for k in ("requests", "prefill_tokens", "decode_tokens")}
        prompt = np.ones((n_k, n_s))
        context = np.ones((n_k, n_s))
        for pool in self.pools:
            arr = pool.spec.arrivals  # type: ignore[union-attr]
            peak = arr.peak_to_mean if arr.kind == "diurnal" else 1.0
            req = expected_arrivals(t0, t1, arr.requests_per_s, peak, arr.peak_hour, self.start_hour)
            per_server = (req / pool.n_servers)[:, None]
            s = slice(int(pool.servers[0]), int(pool.servers[-1]) + 1)
            out["requests"][:, s] = per_server
            out["prefill_tokens"][:, s] = per_server * arr.prompt_tokens
            out["decode_tokens"][:, s] = per_server * arr.output_tokens
            prompt[:, s] = max(arr.prompt_tokens, 1.0)
            context[:, s] = arr.prompt_tokens + arr.output_tokens / 2.0
        return Demand(out["requests"], out["prefill_tokens"], out["decode_tokens"], prompt, context)
