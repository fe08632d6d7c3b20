"""Act: run chosen stages on other hosts (`wiredprof offload`, then `run` / `analyze`).

Modules, one job each:
entries   the plan: `[offload."PIPELINE.STAGE"]` tables (OffloadEntry), read, checked, written
runtime   OffloadRuntime: a stage's callable swapped for a remote one at run time, the
          failure policy (retry, local fallback, at most once) and its counters
connect   opening the plan's hosts: the connector each process of a run uses, the preflight

Nothing is imported here, so reading the plan (`entries`) stays light.
"""
