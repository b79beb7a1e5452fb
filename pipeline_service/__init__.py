"""The pipeline service: runs uploaded images through pipelines stored in PostgreSQL."""
