"""Step implementations. Importing this package registers every step type."""

from pipeline_service.pipeline.steps import detect, filters, image, save, transform  # noqa: F401
