"""Keystone v3 subset at /identity (not written yet)."""

from __future__ import annotations

from fastapi import APIRouter


def identity_router() -> APIRouter:
    return APIRouter()
