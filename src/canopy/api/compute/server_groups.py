"""Nova: server groups (not written yet)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
