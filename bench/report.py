"""Budgets and the printed table for bench/overhead.py (pure: results dict in, text out)."""

from __future__ import annotations

from typing import Any

DIRECT, FLOOR = "direct", "floor"
ROUTERS = ("router /v1", "router /anthropic")
# The budgets (2-core machine).
ADDED_P50_MS = 2.0
VS_FLOOR = 1.3
FIRST_EVENT_MS = 2.0
EVENTS_PER_S = 20_000
# "Flat" per-event cost: the router's CPU per event on the longest stream may be at most this
# much above the shortest's (a cost that grows with the stream shows up as a multiple, not a
# few percent). CPU rather than wall time: on a shared 2-core machine wall time per event
# also measures who else was scheduled.
FLATNESS = 1.25
# Per-key limits and budgets on: added p50 at c=1 over `router /anthropic` (same run, same
# path, the limits off), per state store.
LIMITS_ADDED_MS = {"limits sqlite": 0.3, "limits redis": 0.5}


def _added(phase: dict[str, Any], name: str, key: str = "p50_ms") -> float:
    return float(phase[name][key] - phase[DIRECT][key])


def budgets(results: dict[str, Any]) -> list[dict[str, Any]]:
    c1, first, streams = results["non_stream_c1"], results["first_event"], results["streams"]
    floor_added = _added(c1, FLOOR)
    out = []
    for name in ROUTERS:
        added = _added(c1, name)
        out.append(_check(f"{name}: added p50 at c=1 <= {ADDED_P50_MS} ms", added, ADDED_P50_MS))
        out.append(_check(f"{name}: added p50 at c=1 <= {VS_FLOOR} x floor's "
                          f"({floor_added:.3f} ms)", added, VS_FLOOR * floor_added))
        out.append(_check(f"{name}: first event <= {FIRST_EVENT_MS} ms after direct",
                          _added(first, name), FIRST_EVENT_MS))
        lengths = sorted(streams[name], key=int)
        longest, shortest = streams[name][lengths[-1]], streams[name][lengths[0]]
        out.append(_check(f"{name}: >= {EVENTS_PER_S} events/s on a {lengths[-1]}-event stream",
                          -longest["events_per_s"], -EVENTS_PER_S))
        out.append(_check(f"{name}: CPU per event at {lengths[-1]} <= {FLATNESS} x at "
                          f"{lengths[0]} events (us)", longest["cpu_us_per_event"],
                          FLATNESS * shortest["cpu_us_per_event"]))
    base = c1.get("router /anthropic")
    for name, limit in LIMITS_ADDED_MS.items():
        if name in c1 and base is not None:
            out.append(_check(f"{name}: added p50 at c=1 over router /anthropic <= {limit} ms",
                              c1[name]["p50_ms"] - base["p50_ms"], limit))
    return out


def _check(label: str, value: float, limit: float) -> dict[str, Any]:
    # "at least" budgets come in negated so that every check reads value <= limit
    return {"budget": label, "value": round(abs(value), 3), "limit": round(abs(limit), 3),
            "met": value <= limit}


def _latency_table(title: str, phase: dict[str, Any], with_rps: bool = False) -> list[str]:
    direct = phase[DIRECT]
    floor_added = _added(phase, FLOOR)
    head = f"{'target':<20}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}{'+p99 ms':>9}{'x direct':>10}"
    head += f"{'+ vs floor':>11}" + (f"{'req/s':>9}{'cpu ms/req':>11}" if with_rps else "")
    lines = [title, head]
    for name, row in phase.items():
        added, added99 = _added(phase, name), _added(phase, name, "p99_ms")
        line = (f"{name:<20}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{added:>+9.3f}"
                f"{added99:>+9.3f}{row['p50_ms'] / direct['p50_ms']:>10.2f}")
        ratio = f"{added / floor_added:.2f}" if name not in (DIRECT,) and floor_added > 0 else "-"
        line += f"{ratio:>11}"
        if with_rps:
            line += f"{row['rps']:>9.0f}{row['cpu_ms_per_request']:>11.3f}"
        lines.append(line)
    return lines


def _stream_table(streams: dict[str, Any]) -> list[str]:
    lengths = sorted(next(iter(streams.values())), key=int)
    head = f"{'target':<20}" + "".join(f"{f'{n} ev/s':>14}{'us/ev':>8}{'cpu':>7}"
                                       for n in lengths)
    head += f"{'x direct':>10}"
    lines = ["long streams: relayed events/s (first event to last content), wall us/event, "
             "CPU us/event of the process in the middle", head]
    direct_rate = streams[DIRECT][lengths[-1]]["events_per_s"]
    for name, row in streams.items():
        cells = "".join(f"{row[n]['events_per_s']:>14,.0f}{row[n]['us_per_event']:>8.2f}"
                        f"{row[n]['cpu_us_per_event']:>7.1f}" for n in lengths)
        lines.append(f"{name:<20}{cells}{row[lengths[-1]]['events_per_s'] / direct_rate:>10.2f}")
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, "
             f"load average at start {m['loadavg_at_start']}", ""]
    lines += _latency_table("non-stream latency, c=1 (one keep-alive connection)",
                            results["non_stream_c1"], with_rps=True) + [""]
    lines += _latency_table("non-stream latency, c=16 (16 closed-loop connections)",
                            results["non_stream_c16"], with_rps=True) + [""]
    lines += _latency_table("time to the first streamed event (any event)",
                            results["first_event"]) + [""]
    lines += _latency_table("time to the first streamed text (backend paced at 1 chunk/ms)",
                            results["first_content"]) + [""]
    lines += _stream_table(results["streams"]) + [""]
    lines.append("budgets")
    for check in results["budgets"]:
        mark = "ok  " if check["met"] else "MISS"
        lines.append(f"  {mark} {check['budget']}: {check['value']} (limit {check['limit']})")
    lines.append(f"\nwhole run: {results['seconds']} s")
    return "\n".join(lines)


def _md_latency(title: str, phase: dict[str, Any]) -> list[str]:
    floor_added = _added(phase, FLOOR)
    lines = [f"**{title}**", "",
             "| target | p50 ms | p99 ms | added p50 | added p99 | × direct | added ÷ floor's |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in phase.items():
        added = _added(phase, name)
        ratio = f"{added / floor_added:.2f}" if name != DIRECT and floor_added > 0 else "–"
        lines.append(f"| {name} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {added:+.2f} | "
                     f"{_added(phase, name, 'p99_ms'):+.2f} | "
                     f"{row['p50_ms'] / phase[DIRECT]['p50_ms']:.1f} | {ratio} |")
    return lines + [""]


def _md_throughput(results: dict[str, Any]) -> list[str]:
    lines = ["**Throughput and CPU of the process in the middle**", "",
             "| target | req/s c=1 | CPU ms/req c=1 | req/s c=16 | CPU ms/req c=16 |",
             "|---|---:|---:|---:|---:|"]
    c1, c16 = results["non_stream_c1"], results["non_stream_c16"]
    for name in c1:
        lines.append(f"| {name} | {c1[name]['rps']:.0f} | {c1[name]['cpu_ms_per_request']:.2f} | "
                     f"{c16[name]['rps']:.0f} | {c16[name]['cpu_ms_per_request']:.2f} |")
    return lines + [""]


def _md_streams(streams: dict[str, Any]) -> list[str]:
    lengths = sorted(next(iter(streams.values())), key=int)
    head = " | ".join(f"{int(n):,} ev: ev/s (CPU µs/ev)" for n in lengths)
    lines = ["**Long streams: relayed events/s (CPU µs per event)**", "",
             f"| target | {head} | × direct |", "|---|" + "---:|" * (len(lengths) + 1)]
    direct_rate = streams[DIRECT][lengths[-1]]["events_per_s"]
    for name, row in streams.items():
        cells = " | ".join(f"{row[n]['events_per_s']:,.0f} ({row[n]['cpu_us_per_event']:.0f})"
                           for n in lengths)
        lines.append(f"| {name} | {cells} | "
                     f"{row[lengths[-1]]['events_per_s'] / direct_rate:.2f} |")
    return lines + [""]


def render_markdown(results: dict[str, Any]) -> str:
    """The same figures as `render`, as Markdown tables (for the README)."""
    lines = _md_latency("Non-stream, c=1", results["non_stream_c1"])
    lines += _md_latency("Non-stream, c=16", results["non_stream_c16"])
    lines += _md_throughput(results)
    lines += _md_latency("Time to the first streamed event", results["first_event"])
    lines += _md_latency("Time to the first streamed text (backend paced at 1 chunk/ms)",
                         results["first_content"])
    lines += _md_streams(results["streams"])
    lines += ["**Budgets**", ""]
    for check in results["budgets"]:
        mark = "met" if check["met"] else "**missed**"
        lines.append(f"- {mark}: {check['budget']}: {check['value']} (limit {check['limit']})")
    return "\n".join(lines)
