"""The thin HTTP layer: routers, schemas, error mapping."""
