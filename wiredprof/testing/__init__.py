"""Tooling for tests, benchmarks, the demo and the docs (as `fabric.testing` is for fabric's users).

Real parts only, started on 127.0.0.1 and stopped by PID; none of it is on the path of a
profiled or offloaded run.

Modules, one job each:
localsshd     a throwaway OpenSSH sshd with throwaway keys (host B in tests, benchmarks, `wiredprof demo`)
localcluster  a real `dask scheduler` and `dask worker` processes (a Dask host in tests and benchmarks)
chromium      headless-Chromium screenshots: a timeline SVG as PNG, a report page checked by a test
procs         ending a server they started, by process group (bounded)
"""
