"""The full example in docs/configuration.md is a config canopy accepts, as written."""

from __future__ import annotations

import re
from pathlib import Path

from canopy.config import load_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_documented_example_loads(tmp_path: Path) -> None:
    [example] = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)
    f = tmp_path / "canopy.toml"
    f.write_text(example)
    s = load_settings(f, env={})
    assert {c.driver for c in s.clouds} == {"sim", "ec2", "openstack"}
    [image] = s.images
    assert set(image.map) <= {c.name for c in s.clouds}
