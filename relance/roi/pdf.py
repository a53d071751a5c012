"""The report as a PDF, ready to attach to an e-mail: the HTML page printed by headless
Chromium (Playwright's page.pdf, the browser's own print), A4, with the page's print
styles. Debian's chromium is used, no browser download; RELANCE_CHROMIUM names another."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


class PdfError(RuntimeError):
    pass


def chromium_path() -> str:
    path = os.environ.get("RELANCE_CHROMIUM", CHROMIUM)
    if not Path(path).exists():
        raise PdfError(f"no Chromium at {path}: install the chromium package (apt-get install "
                       "chromium) or set RELANCE_CHROMIUM to a Chromium executable")
    return path


def to_pdf(html: Path, pdf: Path | None = None) -> Path:
    """Print `html` (a file written by relance report) to `pdf` (default: beside it, .pdf).
    The page may load nothing but itself: any other request is refused.

    Playwright's sync API refuses to run where an asyncio loop is running (a Prefect flow,
    a notebook, another Playwright session): the printing runs in a thread of its own."""
    from concurrent.futures import ThreadPoolExecutor
    html = Path(html).resolve()
    pdf = Path(pdf) if pdf else html.with_suffix(".pdf")
    executable = chromium_path()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="relance-pdf") as pool:
        pool.submit(_print, html, pdf, executable).result()
    return pdf


def _print(html: Path, pdf: Path, executable: str) -> None:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url == html.as_uri() else route.abort())
            page.goto(html.as_uri(), wait_until="load")
            page.emulate_media(media="print")
            page.pdf(path=str(pdf), format="A4", print_background=True, prefer_css_page_size=True,
                     display_header_footer=True, header_template="<span></span>",
                     footer_template='<div style="font-size:8px;width:100%;text-align:center;'
                                     'color:#666"><span class="pageNumber"></span> / '
                                     '<span class="totalPages"></span></div>',
                     margin={"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"})
        finally:
            browser.close()
