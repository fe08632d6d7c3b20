"""The environment directories on host B, run there by the worker (stdlib only).

A build happens in `ROOT/.tmp-KEY-RANDOM` (0700) holding a lock the building worker keeps
until it ends, so a directory whose lock is free was left by a provision that died; a
finished build gets its marker, then is renamed to `ROOT/KEY` in one step.
"""

from __future__ import annotations

__all__ = ["make_private_dir", "commit", "free_bytes", "remove_tree"]


def make_private_dir(root: str, tmp: str) -> list[str]:
    import fcntl
    import os as os_
    import shutil
    import sys

    os_.makedirs(root, mode=0o700, exist_ok=True)
    os_.chmod(root, 0o700)
    os_.chmod(os_.path.dirname(root), 0o700)
    removed = []
    for entry in sorted(os_.listdir(root)):
        path = os_.path.join(root, entry)
        if not entry.startswith(".tmp-"):
            continue
        try:
            fd = os_.open(os_.path.join(path, ".lock"), os_.O_RDWR)
        except OSError:
            fd = -1
        try:
            if fd >= 0:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live provision: raises
            shutil.rmtree(path, ignore_errors=True)
            removed.append(entry)
        except OSError:
            pass
        finally:
            if fd >= 0:
                os_.close(fd)
    os_.mkdir(tmp, 0o700)
    os_.mkdir(os_.path.join(tmp, ".wheels"), 0o700)
    # Held by this worker until it ends: a directory whose lock is free was left by a dead provision.
    fd = os_.open(os_.path.join(tmp, ".lock"), os_.O_RDWR | os_.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    sys.__dict__.setdefault("_wiredprof_provision_locks", []).append(fd)
    return removed


def commit(tmp: str, final: str, marker: str, text: str) -> bool:
    import os as os_
    import shutil

    shutil.rmtree(os_.path.join(tmp, ".wheels"), ignore_errors=True)
    os_.unlink(os_.path.join(tmp, ".lock"))
    # Scripts (pip's console scripts, activate) name the directory they were made in.
    bin_dir = os_.path.join(tmp, "bin")
    for name in os_.listdir(bin_dir):
        path = os_.path.join(bin_dir, name)
        if os_.path.islink(path) or not os_.path.isfile(path) or os_.path.getsize(path) > 1 << 20:
            continue
        with open(path, "rb") as f:
            data = f.read()
        if tmp.encode() in data:
            with open(path, "wb") as f:
                f.write(data.replace(tmp.encode(), final.encode()))
    with open(os_.path.join(tmp, marker + ".part"), "w") as f:
        f.write(text)
        f.flush()
        os_.fsync(f.fileno())
    os_.rename(os_.path.join(tmp, marker + ".part"), os_.path.join(tmp, marker))
    try:
        os_.rename(tmp, final)  # atomic: the environment appears whole, marker included
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another provision made the same one first
        return False
    return True


def free_bytes(path: str) -> int:
    import os as os_

    st = os_.statvfs(path)
    return int(st.f_bavail * st.f_frsize)


def remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
