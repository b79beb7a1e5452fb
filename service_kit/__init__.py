"""What both services share to be operated: JSON logs with request ids, Prometheus metrics
(several workers included), /healthz and /metrics, problem+json in the OpenAPI document."""
