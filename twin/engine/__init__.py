"""The engine: simpy event kernel, fleet state as arrays, serving, telemetry."""
