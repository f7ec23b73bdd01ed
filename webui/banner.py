"""The banner the page shows while the app gets ready (issue 16): what is being done, how far
(items encoded / total) and the time left, from :attr:`crs.web.services.Services.progress`.

A first start on a large catalog builds its index for many minutes; without this the page showed
only gradio's "processing" timer over a greyed title, and a person could not tell waiting from
broken.
"""
from __future__ import annotations

from retrieval.progress import BuildProgress

from .cards import plain_html

WAITING_INPUT = "Getting ready: you can type as soon as the catalog is loaded"


def banner_html(progress: BuildProgress | None) -> str:
    """The banner while not ready: the build's latest report (stage, done/total, ETA, a bar),
    or, before the first report, that the models and the index are loading."""
    if progress is None:
        detail, bar = "Loading the models and the search index\u2026", "<progress></progress>"
    else:
        detail = plain_html(str(progress))
        bar = f'<progress max="{progress.total}" value="{progress.done}"></progress>' if progress.total > 0 \
            else "<progress></progress>"
    return (f'<div class="crs-banner" role="status" aria-live="polite"><strong>Getting ready</strong>'
            f'<span class="crs-banner-detail">{detail}</span>{bar}'
            f'<span class="crs-banner-hint">This page updates by itself; the chat opens when it is done.</span></div>')


def failure_html(error: str) -> str:
    """The banner after a failed warm-up: its reason; a message tries to open the catalog again."""
    return (f'<div class="crs-banner crs-banner-failed" role="alert"><strong>Could not get ready</strong>'
            f'<span class="crs-banner-detail">{plain_html(error)}</span>'
            f'<span class="crs-banner-hint">Sending a message tries again.</span></div>')
