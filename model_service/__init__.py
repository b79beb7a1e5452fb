"""The mock detector: answers a prepared car box half of the time."""

from service_kit.multiprocess import use_shared_metrics_dir

# Before anything imports prometheus_client: with several workers they share one directory.
use_shared_metrics_dir("model_service")
