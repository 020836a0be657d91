"""Domains: canopy has exactly one, Default (id `default`), readable by any token holder so
clients can resolve `--domain Default` / `user_domain_name`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from canopy.api.auth import HolderDep
from canopy.api.identity.common import V3, collection_links, flag, self_link
from canopy.domain.errors import NotFound
from canopy.services.identity import DEFAULT_DOMAIN

router = APIRouter(tags=["identity"])

DOMAINS = V3 + "/domains"


def domain_view(request: Request) -> dict[str, Any]:
    did, name = DEFAULT_DOMAIN
    return {
        "id": did,
        "name": name,
        "description": "The default domain (the only one canopy has).",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": self_link(request, f"/domains/{did}"),
    }


@router.get(DOMAINS)
async def list_domains(
    request: Request, holder: HolderDep, name: str | None = None, enabled: str | None = None
) -> dict[str, Any]:
    """[Default], unless the filters exclude it."""
    match = name in (None, DEFAULT_DOMAIN[1]) and flag(enabled, "enabled") in (None, True)
    return {
        "domains": [domain_view(request)] if match else [],
        "links": collection_links(request),
    }


@router.get(DOMAINS + "/{domain_id}")
async def show_domain(request: Request, domain_id: str, holder: HolderDep) -> dict[str, Any]:
    if domain_id != DEFAULT_DOMAIN[0]:
        raise NotFound(f"Could not find domain: {domain_id[:64]}.")
    return {"domain": domain_view(request)}
