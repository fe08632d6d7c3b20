"""A Dask distributed cluster as an offload host (`pip install 'wiredprof[dask]'`).

    [hosts.cluster]
    dask = "tcp://scheduler:8786"

Nothing here imports `distributed` at import time: a project without Dask hosts never needs it.

Modules, one job each:
spec          DaskSpec: the scheduler address and TLS files of one Dask host, no I/O; the
              one-line error when dask.distributed is not installed
task          the worker side: runs one stage call inside a Dask task (stdlib + cloudpickle + distributed)
channel       host A's side of the messages a task sends back through the scheduler (start, proxies)
executor      DaskExecutor: the `Executor` protocol of wiredprof.remote on a Dask cluster
probe         workers, their speed and memory, task overhead, bandwidth, versions

(A real `dask scheduler` and workers on 127.0.0.1 for tests: `wiredprof.testing.localcluster`.)
"""
