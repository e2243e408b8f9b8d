from fastapi import APIRouter
from sqlalchemy import text

from app.db import get_engine

router = APIRouter()


@router.get("/api/health", include_in_schema=False)
def health() -> dict:
    with get_engine().connect() as conn:
        conn.execute(text("select 1"))
    return {"status": "ok"}
