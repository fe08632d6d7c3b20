"""`python -m wiredprof` is the `wiredprof` command."""
from wiredprof.cli import main

if __name__ == "__main__":
    main()
