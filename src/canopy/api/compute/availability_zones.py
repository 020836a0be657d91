"""Nova: availability zones (not written yet)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
