"""Install, from a folder of wheels, what the distributions in a --target directory need
and this interpreter lacks: the missing and too-old requirements only, never a newer
copy of something the machine has (its pytest, its pluggy stay).

    python complete_deps.py SITE WHEELS      (run with SITE on PYTHONPATH)

Exit status 1, naming them, when the folder cannot supply what is needed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys

from pip._vendor.packaging.requirements import Requirement


def unmet(site: str) -> list[str]:
    """Requirements of the distributions under ``site`` no installed distribution meets."""
    needed: dict[str, str] = {}
    for dist in metadata.distributions(path=[site]):
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra's requirement, or another platform's
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                needed[req.name] = f"{req.name}{req.specifier}"
                continue
            if req.specifier and not req.specifier.contains(version, prereleases=True):
                needed[req.name] = f"{req.name}{req.specifier}"
    return sorted(needed.values())


def main() -> int:
    site, wheels = sys.argv[1], sys.argv[2]
    for _ in range(10):  # each round may bring requirements of its own
        need = unmet(site)
        if not need:
            return 0
        print("installing what they need:", " ".join(need))
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
             "--upgrade", "--find-links", wheels, "--target", site, *need],
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            print(f"the wheels in {wheels} cannot supply: {' '.join(need)}")
            return 1
    print("requirements still unmet after 10 rounds:", " ".join(unmet(site)))
    return 1


if __name__ == "__main__":
    sys.exit(main())
