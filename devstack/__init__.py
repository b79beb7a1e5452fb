"""The whole stack on one machine with one command: `python -m devstack` (what `make run` runs).

PostgreSQL (the server at DATABASE_URL, or an embedded one kept in a folder of the checkout),
then migrations + seed, then the model service and the pipeline service, each in its own
process group so that stopping the stack leaves nothing behind.
"""
