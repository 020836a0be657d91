"""Keystone v3 subset at /identity: version documents, tokens and the catalog, and the
admin-managed projects, users, roles, grants and the one domain, and users' own
application credentials, each in its own module."""

from __future__ import annotations

from canopy.api.identity import (
    app_credentials,
    catalog,
    domains,
    projects,
    roles,
    tokens,
    users,
    versions,
)
from canopy.api.identity.common import install_identity, keystone_fault
from canopy.api.service_routes import ServiceRouter

__all__ = ["identity_router", "install_identity", "keystone_fault"]


def identity_router() -> ServiceRouter:
    router = ServiceRouter("/identity")
    for module in (versions, tokens, catalog, projects, users, app_credentials, roles, domains):
        router.include_router(module.router)
    return router
