"""`monitor` (SPEC 8.4): prior → observations → divergence → status for every parameter with an
observation source, stored in the persistence database. The result types live in `result`."""
from __future__ import annotations

from funnelcheck.pipeline.result import MonitorResult, Observed, ParameterCheck, PriorUsed

__all__ = ["MonitorResult", "Observed", "ParameterCheck", "PriorUsed"]
