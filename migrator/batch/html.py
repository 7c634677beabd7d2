"""report.html: one page that stands alone (no scripts, fonts or images from elsewhere) for the people the
migration is done for: how many accounts are done, a chart of accounts finished over time, and every row."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime

from migrator.batch.report import EXACT, AccountResult
from migrator.core.sizes import format_size

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:14px}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}tr.bad td{background:#fdecea}
.exact{color:#1a7f37}.bad{color:#b42318}svg{border:1px solid #ddd;margin:1em 0}
"""
_WIDTH, _HEIGHT, _MARGIN = 640, 220, 40


def render_html(title: str, results: list[AccountResult]) -> str:
    """Return the page: a summary line, an inline SVG chart of progress over time, the table of accounts."""
    counts = Counter(r.status for r in results)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(results)} accounts: {html.escape(summary)}. "
        f"{sum(r.copied for r in results)} messages copied, {sum(r.already_there for r in results)} already there, "
        f"{sum(r.failed for r in results)} failed; {format_size(sum(r.bytes for r in results))}.</p>",
        _chart(results), _table(results), "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _chart(results: list[AccountResult]) -> str:
    """Return an SVG line of accounts finished against time, from each account's finish time."""
    times = sorted(r.finished for r in results if r.finished)
    if not times:
        return "<p>No account has finished yet.</p>"
    start = min([r.started for r in results if r.started] or times)
    span, total = max(times[-1] - start, 1.0), len(results)
    plot_w, plot_h = _WIDTH - 2 * _MARGIN, _HEIGHT - 2 * _MARGIN
    points = [(0.0, 0)] + [(t - start, n) for n, t in enumerate(times, 1)]
    path = " ".join(f"{_MARGIN + plot_w * s / span:.1f},{_HEIGHT - _MARGIN - plot_h * n / total:.1f}"
                    for s, n in points)
    began = datetime.fromtimestamp(start).astimezone().strftime("%Y-%m-%d %H:%M")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" role="img" '
        f'aria-label="accounts finished over time">'
        f'<line x1="{_MARGIN}" y1="{_HEIGHT - _MARGIN}" x2="{_WIDTH - _MARGIN}" y2="{_HEIGHT - _MARGIN}" '
        f'stroke="#999"/>'
        f'<line x1="{_MARGIN}" y1="{_MARGIN}" x2="{_MARGIN}" y2="{_HEIGHT - _MARGIN}" stroke="#999"/>'
        f'<polyline fill="none" stroke="#1a7f37" stroke-width="2" points="{path}"/>'
        f'<text x="{_MARGIN}" y="{_MARGIN - 8}" font-size="12">{total} accounts</text>'
        f'<text x="{_MARGIN}" y="{_HEIGHT - 12}" font-size="12">{html.escape(began)}</text>'
        f'<text x="{_WIDTH - _MARGIN}" y="{_HEIGHT - 12}" font-size="12" text-anchor="end">'
        f'{_duration(span)} later</text></svg>'
    )


def _duration(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m" if hours else f"{minute}m{second:02d}s"


def _table(results: list[AccountResult]) -> str:
    head = ("account", "status", "copied", "already there", "failed", "size", "seconds", "exit code", "first error")
    rows = [
        f'<tr{"" if r.status == EXACT else " class=bad"}><td>{html.escape(r.account)}</td>'
        f'<td class="{"exact" if r.status == EXACT else "bad"}">{html.escape(r.status)}</td>'
        f'<td class="n">{r.copied}</td><td class="n">{r.already_there}</td><td class="n">{r.failed}</td>'
        f'<td class="n">{format_size(r.bytes)}</td><td class="n">{r.seconds:.1f}</td><td class="n">{r.exit_code}</td>'
        f"<td>{html.escape(r.first_error)}</td></tr>"
        for r in results
    ]
    header = "".join(f"<th>{name}</th>" for name in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
