"""The actions pages and their /api twin (to be built: see /work/issue12-design.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
