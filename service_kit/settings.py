"""The settings every service has: logs, the replica's name, the GC freeze."""

from pydantic import Field
from pydantic_settings import BaseSettings


class ServiceSettings(BaseSettings):
    log_level: str = Field(
        "INFO",
        description="Level of the JSON logs on stdout (DEBUG adds the successful probes: "
        "/healthz, /readyz, /metrics).",
    )
    replica_name: str | None = Field(
        None,
        description="Name of this replica in the X-Served-By response header. Default: "
        "hostname:port (in Kubernetes the hostname is the pod's name).",
    )
    gc_freeze: bool = Field(
        True,
        description="Once started, keep the startup objects out of Python's cyclic garbage "
        "collector (no 100+ ms full collections under load). Off only where apps are started "
        "many times in one process (the in-process tests).",
    )
