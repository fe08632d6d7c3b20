"""Decide where a stage should run (`wiredprof plan`, and `offload`'s advice).

Modules, one job each:
model     the cost model and the ranking: what moving each stage to each host does to the flow
capacity  a host as the model sees it (HostCapacity), from its saved probe, measured when missing

Nothing is imported here: `from wiredprof.placement.model import make_plan`.
"""
