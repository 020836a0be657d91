"""The JSON schemas Glance publishes for its image resources (python-glanceclient builds
its models from them). Extra properties are strings, as in Glance; canopy's own
`canopy_locations` is declared, so admin responses validate too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from canopy.api.auth import AuthDep

router = APIRouter()

_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]  # fmt: skip
VISIBILITIES = ["community", "public", "private", "shared"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop"]  # fmt: skip


def _ro(kind: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description, **extra}


def image_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {"type": "string", "description": "An identifier for the image", "pattern": _UUID},
        "name": {
            "type": ["null", "string"],
            "description": "Descriptive name for the image",
            "maxLength": 255,
        },
        "status": _ro("string", "Status of the image", enum=STATUSES),
        "visibility": {
            "type": "string",
            "description": "Scope of image accessibility",
            "enum": VISIBILITIES,
        },
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list.",
        },
        "checksum": _ro(["null", "string"], "md5 hash of image contents.", maxLength=32),
        "os_hash_algo": _ro(["null", "string"], "Algorithm of os_hash_value", maxLength=64),
        "os_hash_value": _ro(["null", "string"], "Hexdigest of the image contents", maxLength=128),
        "owner": {
            "type": ["null", "string"],
            "description": "Owner of the image",
            "maxLength": 255,
        },
        "size": _ro(["null", "integer"], "Size of image file in bytes"),
        "virtual_size": _ro(["null", "integer"], "Virtual size of image in bytes"),
        "container_format": {
            "type": ["null", "string"],
            "description": "Format of the container",
            "enum": [None, *CONTAINER_FORMATS],
        },
        "disk_format": {
            "type": ["null", "string"],
            "description": "Format of the disk",
            "enum": [None, *DISK_FORMATS],
        },
        "created_at": _ro("string", "Date and time of image registration"),
        "updated_at": _ro("string", "Date and time of the last image modification"),
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "min_ram": {
            "type": "integer",
            "description": "Amount of ram (in MB) required to boot image.",
        },
        "min_disk": {
            "type": "integer",
            "description": "Amount of disk space (in GB) required to boot image.",
        },
        "self": _ro("string", "An image self url"),
        "file": _ro("string", "An image file url"),
        "schema": _ro("string", "An image schema url"),
        "canopy_locations": _ro(
            "array",
            "Canopy (admins only): the clouds this image boots on and its id on each; "
            "implicit entries are sim clouds booting it by canopy id.",
            items={
                "type": "object",
                "properties": {
                    "cloud": {"type": "string"},
                    "remote_image": {"type": "string"},
                    "implicit": {"type": "boolean"},
                },
                "required": ["cloud", "remote_image", "implicit"],
            },
        ),
    }
    return {
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


@router.get("/schemas/image", summary="JSON schema of an image")
async def show_image_schema(_ctx: AuthDep) -> dict[str, Any]:
    return image_schema()


@router.get("/schemas/images", summary="JSON schema of an image list")
async def show_images_schema(_ctx: AuthDep) -> dict[str, Any]:
    return images_schema()
