"""Glance v2 subset at /image (not written yet)."""

from __future__ import annotations

from fastapi import APIRouter


def image_router() -> APIRouter:
    return APIRouter()
