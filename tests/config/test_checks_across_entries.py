"""Checks across entries (duplicate names and ids, unknown clouds) and every error at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from canopy.config import ConfigError, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "canopy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    return str(err.value)


def test_a_duplicate_flavor_id_is_refused_with_its_line(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[[flavors]]\n"  # 1
        'name = "small"\n'  # 2
        'id = "1"\n'  # 3
        "vcpus = 1\n"  # 4
        "ram_mb = 512\n"  # 5
        "[[flavors]]\n"  # 6
        'name = "large"\n'  # 7
        'id = "1"\n'  # 8
        "vcpus = 4\n"  # 9
        "ram_mb = 4096\n",  # 10
    )
    msg = error_of(f)
    assert f"{f}:8: flavors[1].id: duplicate id '1' (also flavors[0].id)" in msg


def test_a_duplicate_image_id_is_refused_with_its_line(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        '[[images]]\nname = "a"\nid = "x"\n'  # 1-3
        '[[images]]\nname = "b"\nid = "x"\n',  # 4-6
    )
    assert f"{f}:6: images[1].id: duplicate id 'x'" in error_of(f)


def test_flavors_without_ids_are_not_duplicates(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        '[[flavors]]\nname = "a"\nvcpus = 1\nram_mb = 1\n'
        '[[flavors]]\nname = "b"\nvcpus = 1\nram_mb = 1\n',
    )
    assert [fl.id for fl in load_settings(f, env={}).flavors] == [None, None]


def test_duplicate_ids_are_refused_without_a_file_too() -> None:
    with pytest.raises(ValidationError, match="duplicate id '1' in \\[\\[flavors\\]\\]"):
        Settings(
            flavors=[
                {"name": "a", "id": "1", "vcpus": 1, "ram_mb": 1},
                {"name": "b", "id": "1", "vcpus": 1, "ram_mb": 1},
            ]
        )


def test_checks_across_entries_and_field_errors_are_reported_together(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "[api]\n"  # 1
        "port = 70000\n"  # 2
        "[[clouds]]\n"  # 3
        'name = "a"\n'  # 4
        'tier = "high"\n'  # 5
        "[[clouds]]\n"  # 6
        'name = "a"\n'  # 7
        "[[images]]\n"  # 8
        'name = "u"\n'  # 9
        "[images.map]\n"  # 10
        'nowhere = "img-1"\n',  # 11
    )
    msg = error_of(f)
    lines = msg.splitlines()[1:]
    # One line per problem, in file order: the field errors were hidden behind the
    # duplicate name before.
    assert [line.strip().split(": ")[0] for line in lines] == [
        f"{f}:2",
        f"{f}:5",
        f"{f}:7",
        f"{f}:11",
    ]
    assert "api.port" in lines[0] and "clouds[0].tier" in lines[1]
    assert "duplicate name 'a'" in lines[2] and "unknown cloud 'nowhere'" in lines[3]


def test_a_duplicate_is_reported_once(tmp_path: Path) -> None:
    f = write(tmp_path, '[[clouds]]\nname = "a"\n[[clouds]]\nname = "a"\n')
    assert error_of(f).count("duplicate name") == 1


def test_every_cloud_disabled_is_a_warning_naming_the_file(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        '[[clouds]]\nname = "a"\nenabled = false\n[[clouds]]\nname = "b"\nenabled = false\n',
    )
    settings = load_settings(f, env={})
    (warning,) = settings.warnings()
    assert warning.startswith(f"{f}: every cloud is disabled (a, b)")
    assert "can still be stopped, started and deleted" in warning


def test_one_enabled_cloud_is_enough(tmp_path: Path) -> None:
    f = write(tmp_path, '[[clouds]]\nname = "a"\nenabled = false\n[[clouds]]\nname = "b"\n')
    assert load_settings(f, env={}).warnings() == []
    assert load_settings(None, env={}).warnings() == []
