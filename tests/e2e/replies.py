"""Scripted-backend responders for the Claude Code scenarios.

Each responder looks at the OpenAI request the router sent and answers like a model that
follows the scenario: ask for the tool on the main turn, then answer from what the tool
returned. Answers echo what they found (the Bash output, the search titles, the page's secret
word), so a final answer that contains it proves the data went all the way round.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.fakes.scripted_backend import Recorded, Reply, Text, ToolCalls

HAIKU = "claude-haiku-4-5-20251001"
BASH_COMMAND = "echo e2e-marker-$((6*7))"  # the output (…-42) exists only if a shell ran it
BASH_OUTPUT = "e2e-marker-42"
SEARCH_QUERY = "asyncio tutorials"
_SECRET = re.compile(r"ZEBRA-\d+")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(p.get("text", "")) if isinstance(p, dict) else str(p)
                         for p in content)
    return "" if content is None else str(content)


def messages(rec: Recorded) -> list[dict[str, Any]]:
    body = rec.body if isinstance(rec.body, dict) else {}
    return [m for m in body.get("messages") or [] if isinstance(m, dict)]


def tool_names(rec: Recorded) -> list[str]:
    body = rec.body if isinstance(rec.body, dict) else {}
    return [t.get("function", {}).get("name", "") for t in body.get("tools") or []]


def tool_results(rec: Recorded) -> list[str]:
    return [_text_of(m.get("content")) for m in messages(rec) if m.get("role") == "tool"]


def tool_results_of(body: Any) -> list[str]:
    """The text of every tool message of an OpenAI request body."""
    found = body.get("messages") if isinstance(body, dict) else None
    return [_text_of(m.get("content")) for m in found or []
            if isinstance(m, dict) and m.get("role") == "tool"]


def user_text_of(body: Any) -> str:
    """All user-message text of an OpenAI request body."""
    found = body.get("messages") if isinstance(body, dict) else None
    return "\n".join(_text_of(m.get("content")) for m in found or []
                     if isinstance(m, dict) and m.get("role") == "user")


def user_text(rec: Recorded) -> str:
    return user_text_of(rec.body)


def bash_round_trip(rec: Recorded) -> Reply:
    results = tool_results(rec)
    if results:
        found = BASH_OUTPUT if any(BASH_OUTPUT in r for r in results) else "nothing"
        return Text(f"The command printed {found}.")
    if "Bash" in tool_names(rec):
        args = {"command": BASH_COMMAND, "description": "Print the e2e marker"}
        return ToolCalls([("Bash", json.dumps(args))])
    return Text("ok")


def titles_in(text: str) -> list[str]:
    """Titles from Claude Code's WebSearch tool_result (`Links: [{"title":…,"url":…}]`)."""
    match = re.search(r"Links: (\[.*?\])\s*$", text, re.MULTILINE)
    if not match:
        return []
    try:
        return [str(link.get("title")) for link in json.loads(match.group(1))]
    except ValueError:
        return []


def websearch_flow(rec: Recorded) -> Reply:
    results = tool_results(rec)
    if results:
        titles = [t for r in results for t in titles_in(r)]
        return Text("Titles: " + ("; ".join(titles) if titles else "none found"))
    if "WebSearch" in tool_names(rec):
        return ToolCalls([("WebSearch", json.dumps({"query": SEARCH_QUERY}))])
    return Text("Here is a brief summary of the search results.")


def webfetch_flow(url: str) -> Callable[[Recorded], Reply]:
    def reply(rec: Recorded) -> Reply:
        text = user_text(rec)
        if "Web page content:" in text:  # Claude Code's summarizer side query (REPORT.md §6)
            secret = _SECRET.search(text)
            return Text(f"The page says the secret word is {secret.group(0) if secret else '?'}.")
        results = tool_results(rec)
        if results:
            return Text("From the page: " + " ".join(results)[:300])
        if "WebFetch" in tool_names(rec):
            args = {"url": url, "prompt": "What is the secret word?"}
            return ToolCalls([("WebFetch", json.dumps(args))])
        return Text("ok")

    return reply


PDF_SECRET = "HERON-5519"
PDF_PAGES = [["Field report, page one.", "Nothing to see here."],
             [f"The access phrase is {PDF_SECRET}."]]


def pdf_read_flow(path: str) -> Callable[[Recorded], Reply]:
    """Ask Claude Code to Read the PDF, then answer from what came back."""
    def reply(rec: Recorded) -> Reply:
        results = tool_results(rec)
        if results:
            found = PDF_SECRET if any(PDF_SECRET in r for r in results) else "nothing"
            return Text(f"The PDF says {found}.")
        if "Read" in tool_names(rec):
            return ToolCalls([("Read", json.dumps({"file_path": path}))])
        return Text("ok")

    return reply
