"""requirements.txt and requirements-ray.txt: one file each for Linux x86-64, macOS arm64 and Windows x86-64
(tools/check_platforms.py)."""

from pathlib import Path

import pytest

from tools.check_platforms import PLATFORMS, requirements_for


@pytest.mark.parametrize("platform, tensorflow", [("linux", "tensorflow-cpu==2.21.0"),
                                                  ("macos", "tensorflow==2.21.0"),
                                                  ("windows", "tensorflow-cpu==2.21.0")])
def test_each_platform_gets_one_tensorflow_of_the_same_version(platform, tensorflow):
    pins = requirements_for(platform)
    assert [pin for pin in pins if pin.startswith("tensorflow")] == [tensorflow]
    assert len(pins) == len(set(pin.split("==")[0] for pin in pins))


def test_every_other_pin_is_the_same_everywhere():
    other = [{pin for pin in requirements_for(platform) if not pin.startswith("tensorflow")}
             for platform in PLATFORMS]
    assert other[0] == other[1] == other[2] and "openvino==2026.4.1" in other[0]


def test_ray_is_optional_and_pinned_alike_everywhere():
    """extract on Ray only (EXTRACT_RUNNER=ray): in a file of its own, which the platform check reads too."""
    from tools.check_platforms import REQUIREMENTS

    assert Path("requirements-ray.txt") in REQUIREMENTS
    for platform in PLATFORMS:
        assert requirements_for(platform, Path("requirements-ray.txt")) == ["ray[data]==2.60.0"]
        assert not [pin for pin in requirements_for(platform) if pin.startswith("ray")]
