"""The pipeline service: runs uploaded images through pipelines stored in PostgreSQL."""

from service_kit.multiprocess import use_shared_metrics_dir

# Before anything imports prometheus_client: with several workers they share one directory.
use_shared_metrics_dir("pipeline_service")
