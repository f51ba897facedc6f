"""Turn providers' ISO timestamps into the free-text `page_age` Anthropic uses
("April 30, 2025", websearch.md §1.3)."""

from __future__ import annotations

from datetime import datetime


def human_date(value: object) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return f"{moment:%B} {moment.day}, {moment.year}"
