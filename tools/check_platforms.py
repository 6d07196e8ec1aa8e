"""Check that the requirements install on Linux x86-64, macOS arm64 and Windows x86-64 (Python 3.11).

    python -m tools.check_platforms [--platforms linux macos windows] [--requirements FILE ...]

requirements.txt, and requirements-ray.txt (optional: extract on Ray) on top of it. For each
platform, every pin of each file whose environment markers hold there must have a
wheel built for that platform (or for any: pure Python), as pip finds it with `pip install
--dry-run --no-deps --only-binary=:all: --platform ...`, without a machine of that kind. pip
evaluates markers against the machine it runs on, so they are evaluated here, for the target.
The pins' own dependencies are not checked this way (some are sdists only, pure Python, such as
dvc's antlr4-python3-runtime, which pip builds anywhere). Needs the package index; downloads wheels.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

# pip's --platform tags and the marker environment of each target.
PLATFORMS = {
    "linux": ([f"manylinux_2_{minor}_x86_64" for minor in range(17, 36)] + ["manylinux2014_x86_64"],
              {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
               "os_name": "posix"}),
    "macos": (["macosx_14_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
              {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
               "os_name": "posix"}),
    "windows": (["win_amd64"],
                {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
                 "os_name": "nt"}),
}
REQUIREMENTS = [Path("requirements.txt"), Path("requirements-ray.txt")]
PYTHON = {"python_version": "3.11", "python_full_version": "3.11.7", "implementation_name": "cpython",
          "platform_python_implementation": "CPython"}


def requirements_for(platform, path=Path("requirements.txt")):
    """The requirement lines of `path` (without markers) that apply on `platform`."""
    environment = dict(PLATFORMS[platform][1], **PYTHON)
    selected = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):  # pip options (-r, --index-url): not pins
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            selected.append(str(requirement))
    return selected


def resolve(platform, requirements):
    """pip's dry run for `platform`: (success, its last lines: what it would install, or why not)."""
    tags, _ = PLATFORMS[platform]
    with tempfile.TemporaryDirectory() as target:
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
                   "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                   "--target", target, *(f"--platform={tag}" for tag in tags), *requirements]
        result = subprocess.run(command, capture_output=True, text=True)
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()
             if line.startswith(("Would install", "ERROR"))]
    return result.returncode == 0, lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platforms", nargs="+", choices=list(PLATFORMS), default=list(PLATFORMS))
    parser.add_argument("--requirements", type=Path, nargs="+", default=REQUIREMENTS)
    args = parser.parse_args(argv)
    failed = 0
    for platform in args.platforms:
        requirements = [pin for path in args.requirements for pin in requirements_for(platform, path)]
        ok, tail = resolve(platform, requirements)
        failed += not ok
        print(f"{platform}: {'every pin has a wheel' if ok else 'FAILS'} ({len(requirements)} pins)\n  "
              + "\n  ".join(tail))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
