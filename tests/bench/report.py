"""Issue 12's targets, checked against the benchmark's figures, and the printed report."""

from __future__ import annotations

from typing import Any

from tests.bench.loadgen import INFO, LINK, RESULT, START

NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
ENDPOINTS = (START, RESULT, LINK, INFO)


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: figure, value, target text, met (``None`` when not measured)."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, text: str, met: bool | None, note: str = "") -> None:
        out.append({"figure": name, "value": value, "target": text, "met": met, "note": note})

    for db, name in NAMES.items():
        if db not in r:
            continue
        d = r[db]
        add(f"{name}: sessions/s / B", d["ratio"], ">= 0.7", d["ratio"] >= 0.7,
            "token pool ran dry: figure is low" if d["wrk"]["dry_threads"] else "")
        link = d["paced"]["endpoints"].get(LINK, {}).get("p99")
        add(f"{name}: /link_phone p99 at half peak (ms)", link, "<= 25", link is not None and link <= 25)
        scale = d["scale"]
        for endpoint, key in ((INFO, "info_ratio"), (LINK, "link_ratio")):
            add(f"{name}: {endpoint} p50 at 1e6 / at 1e3", scale[key], "<= 1.3", scale[key] <= 1.3,
                "" if scale["large"]["stored"] >= 1_000_000 else f"only {scale['large']['stored']:,} stored")
        c = scale["cleanup"]
        deleted = c["clean_db"]["status"] == 200 and c["rows_after"] < c["rows_before"] - scale["large"]["stored"] // 2
        add(f"{name}: longest wait during cleanup (ms)", c["max_wait_ms"], "<= 100",
            deleted and c["max_wait_ms"] <= 100,
            "" if deleted else f"cleanup did not delete the idle sessions (clean_db {c['clean_db']['status']})")
    if "rss" in r:
        m = r["rss"]
        reached = m["sessions"] >= m["target_sessions"]
        value = m["after_sessions_mb"] if reached else m["projected_mb"]
        add(f"RSS after {m['target_sessions']:,} sessions (MB, server + workers)", value, "<= 100", value <= 100,
            "" if reached else f"projected from {m['sessions']:,} sessions in the time allowed")
        grown = m["after_cleanup_mb"] / m["start_mb"] - 1
        add("RSS after cleanup vs start", round(grown, 3), "within 10 %", grown <= 0.10)
    if "start" in r:
        add("start to first answer (s, median)", r["start"]["median_s"], "<= 0.8", r["start"]["median_s"] <= 0.8)
    return out


def _verdict(met: bool | None) -> str:
    return "MET" if met else "not measured" if met is None else "NOT MET"


def render(r: dict[str, Any]) -> str:
    """The report, as printed."""
    meta = r["meta"]
    lines = [
        f"connect-plugin perf ({meta['mode']} run of {meta.get('code', 'unknown')}, {meta['cpus']} CPUs, "
        f"started {meta['started']}, load average before {meta['loadavg_before']}, after {meta['loadavg_after']})",
    ]
    for db, name in NAMES.items():
        if db not in r:
            continue
        d, w, p, b = r[db], r[db]["wrk"], r[db]["paced"], r[db]["bounds"]
        lines += [
            "",
            f"{name} (load average before: {d['loadavg_before']})",
            f"  bound: bare Tornado JSON POST {b['bare_rps']:.0f} req/s, bare RSA-OAEP {b['rsa_per_s']:.0f} /s: "
            f"B = 1 / (4/{b['bare_rps']:.0f} + 2/{b['rsa_per_s']:.0f}) = {b['B']:.1f} sessions/s"
            f"   [B just before {b['before']['B']:.0f}, just after {b['after']['B']:.0f}]",
            f"  whole sessions (wrk, 8 connections): {d['sessions_per_s']:.1f} sessions/s = {d['ratio']:.2f} of B"
            f"   [all requests p50 {w['p50_ms']:.1f} ms, p99 {w['p99_ms']:.1f} ms; errors {w['errors']}]",
            f"  per endpoint, paced at half peak ({p['rate']:.1f} sessions/s, {p['sessions']} sessions):",
        ]
        for endpoint in ENDPOINTS:
            e = p["endpoints"].get(endpoint)
            if e:
                lines.append(f"    {endpoint:<20} p50 {e['p50']:7.1f} ms   p99 {e['p99']:7.1f} ms"
                             f"   max {e['max']:7.1f} ms")
        if p["errors"]:
            lines.append(f"    unexpected answers: {p['errors']}")
        s = d["scale"]
        for endpoint, key in ((INFO, "info_ratio"), (LINK, "link_ratio")):
            lines.append(
                f"  {endpoint} p50: {s['small']['endpoints'][endpoint]['p50']:.2f} ms at {s['small']['stored']:,} "
                f"stored, {s['large']['endpoints'][endpoint]['p50']:.2f} ms at {s['large']['stored']:,}: "
                f"x{s[key]:.2f}")
        c = s["cleanup"]
        lines.append(
            f"  cleanup of {c['rows_before']:,} sessions: clean_db {c['clean_db']['status']} in "
            f"{c['clean_db']['seconds']} s, {c['rows_after']:,} rows left; longest wait of a request "
            f"every 10 ms: {c['max_wait_ms']:.0f} ms"
            + (f" ({c['unanswered']} unanswered at the end)" if c["unanswered"] else ""))
    if "rss" in r:
        m = r["rss"]
        main = m.get("main_mb")
        lines += ["", f"RSS ({NAMES[m['database']]}, the server and its {m.get('workers', 0)} crypto worker(s) "
                  f"added up): {m['start_mb']:.1f} MB at start, {m['after_sessions_mb']:.1f} MB "
                  f"after {m['sessions']:,} whole sessions, {m['after_cleanup_mb']:.1f} MB after their cleanup "
                  f"(clean_db {m['clean_db_status']} in {m['clean_db_seconds']} s)"]
        if main:
            lines.append(f"  the server process alone: {main[0]:.1f} / {main[1]:.1f} / {main[2]:.1f} MB")
        if m.get("pss_mb"):
            pss = m["pss_mb"]
            lines.append(f"  PSS of the server and its workers (shared library pages counted once, closer to what a "
                         f"container's memory limit counts): {pss[0]:.1f} / {pss[1]:.1f} / {pss[2]:.1f} MB")
        if m["sessions"] < m["target_sessions"]:
            lines.append(f"  projected at {m['target_sessions']:,} sessions (growth over the run's second half): "
                         f"{m['projected_mb']:.1f} MB")
    if "start" in r:
        s = r["start"]
        lines.append(f"Start to first answer ({NAMES[s['database']]}): median {s['median_s']:.2f} s of "
                     f"{len(s['starts_s'])} starts {s['starts_s']} (first start, creating the database: "
                     f"{s['first_start_s']:.2f} s)")
    lines += ["", "Targets (issue 12)"]
    width = max((len(t["figure"]) for t in r["targets"]), default=10)
    for t in r["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:g}"
        note = f"  ({t['note']})" if t["note"] else ""
        lines.append(f"  {t['figure']:<{width}}  {value:>8}  {t['target']:<12} {_verdict(t['met'])}{note}")
    return "\n".join(lines)
