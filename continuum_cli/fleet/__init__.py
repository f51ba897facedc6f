"""Several backends per model: per-backend state, load balancing, health checks, failover.

    state.py     one backend's counters and the ejection arithmetic (pure)
    balancer.py  which ready backend gets the next request, by strategy and weight (pure)
    classify.py  what an upstream error means for failover and ejection (pure)
    fleet.py     the backends of the running config, tickets for requests in flight
    health.py    active health checks (async shell)
    failover.py  one request tried across backends and fallback models (async shell)
"""

from continuum_cli.fleet.fleet import Fleet, FleetHooks, Ticket

__all__ = ["Fleet", "FleetHooks", "Ticket"]
