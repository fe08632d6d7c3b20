import wiredprof  # noqa: F401

raise ImportError("no module named 'secret_sauce'")
