"""Loads the UI's search page in fresh browser contexts and reports how long the first
search took to render (median of the runs), for bench/ui.sh.

    measure.py ENDPOINT INDEX RUNS
"""

import json
import statistics
import sys

from playwright.sync_api import sync_playwright

from test_ui import CHROMIUM_ARGS, wait_until


def main():
    endpoint, index, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    first_search, to_first_results, page_ready = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"{endpoint}/ui/?index={index}")
            wait_until(page, "window.quarryTimings !== undefined")
            timings = page.evaluate("window.quarryTimings")
            first_search.append(timings["firstSearchMs"])
            to_first_results.append(timings["firstResultsMs"])
            page_ready.append(page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
            context.close()
        browser.close()
    print(json.dumps({
        "runs": runs,
        "first_search_render_ms_median": round(statistics.median(first_search), 1),
        "first_search_render_ms_cold": round(first_search[0], 1),
        "navigation_to_first_results_ms_median": round(statistics.median(to_first_results), 1),
        "navigation_to_page_ready_ms_median": round(statistics.median(page_ready), 1),
        "first_search_render_ms_all": [round(value, 1) for value in first_search],
    }))


if __name__ == "__main__":
    main()
