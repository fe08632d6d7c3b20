"""The `.wiredprof/` directory beside a project's configuration: its whole layout, in one place.

    .wiredprof/
      last-profile.json   the last `analyze` (for `plan` and `offload` without arguments)
      hosts/NAME.json     the last probe of each host (`wiredprof hosts check NAME`)

Nothing secret is written here; it may be deleted at any time (it is measured again).
"""
from __future__ import annotations

from pathlib import Path

from wiredprof.errors import UsageError
from wiredprof.profile import Profile, load_profile

__all__ = ["STATE_DIR", "state_dir", "probes_dir", "last_profile_path", "save_last_profile", "load_last_profile"]

STATE_DIR = ".wiredprof"


def state_dir(root: Path) -> Path:
    """The project's `.wiredprof/` (`root`: the project directory, `ProjectConfig.root`)."""
    return root / STATE_DIR


def probes_dir(root: Path) -> Path:
    """Where `hosts check` saves probe results."""
    return state_dir(root) / "hosts"


def last_profile_path(root: Path) -> Path:
    """Where `analyze` keeps the last profile, for `plan` and `offload` without arguments."""
    return state_dir(root) / "last-profile.json"


def save_last_profile(profile: Profile, root: Path) -> Path:
    """Keep `profile` as the project's last one; returns where."""
    path = last_profile_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile.save(path)
    return path


def load_last_profile(root: Path) -> Profile:
    """The project's last profile; a one-line error when `analyze` has not run here yet."""
    path = last_profile_path(root)
    if not path.is_file():
        raise UsageError(f"no profile yet in {root}: run `wiredprof analyze FLOW.py` first, or give PROFILE")
    return load_profile(path)
