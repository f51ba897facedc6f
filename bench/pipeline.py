"""CPU per event of the router's own Anthropic stream pipeline, without sockets or httpx.

What `/anthropic` does with each upstream SSE event after httpx hands it over: SSE decode,
JSON parse, translation, merging of the deltas that arrived together, frame encoding. The
overhead benchmark's per-event figure adds httpx's read path and the event loop to this;
this one is steady enough on a shared machine to compare two versions of the code.

Usage: `python bench/pipeline.py [EVENTS ...] [--batch N] [--thinking]`
(default 1 000, 10 000, 100 000 events; `--batch` events per upstream read, default 64).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from continuum_cli.config.models import Backend  # noqa: E402
from continuum_cli.translate.names import ToolNameMap  # noqa: E402
from continuum_cli.translate.sse_encode import coalesce_deltas, encode_event  # noqa: E402
from continuum_cli.translate.stream import StreamTranslator  # noqa: E402
from continuum_cli.upstream import client  # noqa: E402
from continuum_cli.upstream.sse_decode import SSEDecoder  # noqa: E402

BACKEND = Backend(name="bench", type="vllm", url="http://127.0.0.1:1/v1")


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "bench", "choices": [{"index": 0, "delta": delta,
                                            "finish_reason": finish}]}
    return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()


def run(events: int, batch: int, probe_chars: int) -> float:
    """CPU seconds per event for one stream of `events` content chunks."""
    token = _event({"content": "tok "})
    raws = [_event({"role": "assistant", "content": ""})] + [token] * events
    raws.append(_event({}, "stop"))
    started = time.process_time()
    decoder = SSEDecoder()
    translator = StreamTranslator(model="m", message_id="msg_bench",
                                  tool_names=ToolNameMap.build([]),
                                  think_probe_chars=probe_chars)
    out = [encode_event(n, p) for n, p in translator.start_events()]
    for start in range(0, len(raws), batch):
        produced = []
        for raw in raws[start:start + batch]:
            for sse in decoder.feed(raw):
                chunk = client._parse_chunk(BACKEND, sse.data)
                if chunk is not None:
                    produced.extend(translator.feed(chunk, 0.0))
        out.extend(encode_event(n, p) for n, p in coalesce_deltas(produced))
    out.extend(encode_event(n, p) for n, p in translator.finish())
    elapsed = time.process_time() - started
    assert b"".join(out).count(b"tok ") == events
    return elapsed / events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="*", type=int, default=[1_000, 10_000, 100_000])
    parser.add_argument("--batch", type=int, default=64, help="events per upstream read")
    parser.add_argument("--thinking", action="store_true",
                        help="hold back leading text as for a request with thinking on")
    args = parser.parse_args()
    for events in args.events:
        best = min(run(events, args.batch, 512 if args.thinking else 0) for _ in range(3))
        print(f"{events:>8} events: {best * 1e6:6.2f} us CPU/event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
