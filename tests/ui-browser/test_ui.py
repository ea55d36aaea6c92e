"""The web UI in headless Chromium against a live node, as a user drives it.

Called by tests/web_ui.rs with a JSON spec: the node's endpoint, the index and the counts
its data must give, where to save screenshots, and an API key when auth is on. Prints one
JSON line of measurements; any failed check raises, which fails the Rust test.
"""

import json
import re
import sys
import time
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 15_000
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def wait_until(page, expression, timeout_ms=TIMEOUT_MS):
    """Polls `expression` in the page until it is truthy. (Playwright's wait_for_function
    evaluates strings with eval, which the page's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        if page.evaluate(expression):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


def hit_count(page):
    text = page.locator("#hit-count").inner_text()
    return int(re.sub(r"[^0-9]", "", text))


def wait_for_count(page, count):
    expect(page.locator("#hit-count")).to_have_text(re.compile(rf"^{count:,} logs?$"), timeout=TIMEOUT_MS)


def url_state(page):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page.url).query))


def ingest(spec, lines):
    request = urllib.request.Request(
        f"{spec['endpoint']}/api/v1/{spec['index']}/ingest?commit=force",
        data="\n".join(json.dumps(line) for line in lines).encode(),
        method="POST",
        headers={"Content-Type": "application/x-ndjson", **auth_headers(spec)},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200, response.status


def auth_headers(spec):
    return {"Authorization": f"ApiKey {spec['api_key']}"} if spec.get("api_key") else {}


def sign_in_if_asked(page, spec):
    if not spec.get("api_key"):
        return
    dialog = page.locator("#sign-in")
    expect(dialog).to_be_visible(timeout=TIMEOUT_MS)
    page.screenshot(path=f"{spec['out']}/sign-in.png")
    expect(page.locator("#api-key-input")).to_be_focused()
    page.fill("#api-key-input", spec["api_key"])
    page.click("#sign-in button[value=sign-in]")


def search_page(page, spec, measurements):
    out = spec["out"]
    index = spec["index"]
    page.goto(f"{spec['endpoint']}/ui/?index={index}")
    sign_in_if_asked(page, spec)
    expect(page.locator("#results")).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
    wait_for_count(page, spec["total"])
    timings = page.evaluate("window.quarryTimings")
    measurements["first_results_after_navigation_ms"] = round(timings["firstResultsMs"], 1)
    measurements["first_search_render_ms"] = round(timings["firstSearchMs"], 1)
    # Newest first, and the histogram drew stacked bars with a legend per severity.
    first_time = page.locator(".hit .hit-time").first.inner_text()
    second_time = page.locator(".hit .hit-time").nth(1).inner_text()
    assert first_time >= second_time, (first_time, second_time)
    legend = page.locator(".legend-item").all_inner_texts()
    assert set(spec["severities"]) <= set(legend), legend
    painted = page.evaluate("""() => {
        const canvas = document.getElementById('histogram');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height - 20).data;
        let count = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
        return count;
    }""")
    assert painted > 1000, f"the histogram painted {painted} pixels"
    page.screenshot(path=f"{out}/search.png", full_page=False)

    # A query typed and run with Enter: the count, highlighted terms, the URL.
    page.fill("#query-input", spec["query"])
    page.press("#query-input", "Enter")
    wait_for_count(page, spec["query_hits"])
    expect(page.locator(".hit .hit-body mark").first).to_have_text(re.compile(spec["highlighted"], re.I))
    assert url_state(page)["query"] == spec["query"]

    # A field value from the sidebar narrows the query.
    field = page.locator("details.field", has=page.locator(".field-name", has_text=re.compile(rf"^{spec['severity_field']}$")))
    field.locator("summary").click()
    value = field.locator("button.value-include", has_text=re.compile(rf"^{spec['severity_value']}$"))
    expect(value).to_be_visible(timeout=TIMEOUT_MS)
    counts = field.locator(".value-count").all_inner_texts()
    assert counts, "no top values"
    page.screenshot(path=f"{out}/fields.png")
    value.click()
    expected_query = f"{spec['query']} AND {spec['severity_field']}:{spec['severity_value']}"
    expect(page.locator("#query-input")).to_have_value(expected_query, timeout=TIMEOUT_MS)
    wait_for_count(page, spec["query_and_value_hits"])
    severities = set(page.locator(".hit .sev").all_inner_texts())
    assert severities == {spec["severity_value"]}, severities
    # Its negation replaces it: the open field's top values followed the new results.
    exclude = field.locator("button.value-exclude")
    expect(exclude).to_have_count(1, timeout=TIMEOUT_MS)
    exclude.click()
    negated_query = f"{spec['query']} AND NOT {spec['severity_field']}:{spec['severity_value']}"
    expect(page.locator("#query-input")).to_have_value(negated_query, timeout=TIMEOUT_MS)
    wait_for_count(page, spec["query_hits"] - spec["query_and_value_hits"])
    page.go_back()
    expect(page.locator("#query-input")).to_have_value(expected_query, timeout=TIMEOUT_MS)
    wait_for_count(page, spec["query_and_value_hits"])

    # A row opens to its whole document; the keyboard moves between rows.
    page.locator(".hit .hit-line").first.click()
    document = json.loads(page.locator(".hit .hit-json").first.inner_text())
    assert spec["severity_field"] in document and "body" in document, document
    page.screenshot(path=f"{out}/document.png")
    page.locator(".hit").nth(1).focus()
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("Array.from(document.querySelectorAll('.hit')).indexOf(document.activeElement)")
    assert focused == 2, focused
    page.keyboard.press("Enter")
    expect(page.locator(".hit").nth(2)).to_have_attribute("aria-expanded", "true")

    # The state is in the URL: a new tab on it shows the same search.
    shared_url = page.url
    other = page.context.new_page()
    other.goto(shared_url)
    # The key is kept per tab (session storage): a new tab asks for it again.
    sign_in_if_asked(other, spec)
    expect(other.locator("#query-input")).to_have_value(expected_query, timeout=TIMEOUT_MS)
    wait_for_count(other, spec["query_and_value_hits"])
    assert other.locator("#range-select").input_value() == page.locator("#range-select").input_value()
    other.close()

    # Dragging across the histogram zooms in: an absolute range in the URL, fewer logs.
    page.fill("#query-input", "")
    page.press("#query-input", "Enter")
    wait_for_count(page, spec["total"])
    box = page.locator("#histogram").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.55, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=8)
    page.mouse.up()
    expect(page.locator("#range-select")).to_have_value("custom", timeout=TIMEOUT_MS)
    expect(page.locator("#results")).to_have_attribute("data-state", "done")
    wait_until(page, f"document.getElementById('hit-count') && Number(document.getElementById('hit-count').innerText.replace(/[^0-9]/g, '')) < {spec['total']}")
    state = url_state(page)
    assert state["from"].isdigit() and state["to"].isdigit(), state
    assert 0 < int(state["to"]) - int(state["from"]) < 3_600_000, state
    zoomed = hit_count(page)
    assert 0 < zoomed < spec["total"], zoomed
    page.screenshot(path=f"{out}/zoomed.png")
    # Clicking a bar narrows to its bucket.
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] - 25)
    wait_until(page, f"Number(document.getElementById('hit-count').innerText.replace(/[^0-9]/g, '')) < {zoomed}")
    measurements["zoomed_hits"] = zoomed
    measurements["bucket_hits"] = hit_count(page)
    page.go_back()
    expect(page.locator("#range-select")).to_have_value("custom", timeout=TIMEOUT_MS)

    # A bad query: the error is shown at its position.
    page.select_option("#range-select", "now-24h")
    wait_for_count(page, spec["total"])
    page.fill("#query-input", spec["bad_query"])
    page.press("#query-input", "Enter")
    error = page.locator("#query-error")
    expect(error).to_be_visible(timeout=TIMEOUT_MS)
    caret_line = error.inner_text().split("\n")[1]
    assert caret_line.index("^") == spec["bad_query_position"], (caret_line, spec["bad_query_position"])
    assert page.evaluate("document.activeElement.id") == "query-input"
    assert page.evaluate("document.getElementById('query-input').selectionStart") == spec["bad_query_position"]
    page.screenshot(path=f"{out}/query-error.png")

    # Infinite scroll: reaching the end of the list loads the next page with search_after.
    page.fill("#query-input", "")
    page.press("#query-input", "Enter")
    wait_for_count(page, spec["total"])
    first_page = page.locator(".hit").count()
    page.mouse.wheel(0, 100_000)
    wait_until(page, f"document.querySelectorAll('.hit').length > {first_page}")
    texts = page.locator(".hit .hit-body").all_inner_texts()
    assert len(texts) == len(set(texts)), "a page repeated hits"

    # Live mode prepends what arrives.
    page.evaluate("window.scrollTo(0, 0)")
    page.check("#live-input")
    expect(page.locator("#live-input")).to_be_checked()
    assert url_state(page).get("live") == "1"
    ingest(spec, [spec["live_document"]])
    expect(page.locator(".hit").first).to_contain_text(spec["live_document"]["body"], timeout=TIMEOUT_MS * 2)
    page.screenshot(path=f"{out}/live.png")
    page.uncheck("#live-input")

    # API errors are shown in words, never as a blank page.
    page.route("**/search", lambda route: route.fulfill(status=500, content_type="application/json", body='{"error": "the searcher broke"}'))
    page.press("#query-input", "Enter")
    expect(page.locator(".error-box")).to_contain_text("Server error (HTTP 500): the searcher broke", timeout=TIMEOUT_MS)
    page.unroute("**/search")
    page.route("**/search", lambda route: route.abort("connectionrefused"))
    page.press("#query-input", "Enter")
    expect(page.locator(".error-box")).to_contain_text("did not answer", timeout=TIMEOUT_MS)
    page.screenshot(path=f"{out}/unreachable.png")
    page.unroute("**/search")


def timeless_index(page, spec):
    """An index without a timestamp field: every document, no range, no histogram."""
    page.goto(f"{spec['endpoint']}/ui/?index={spec['timeless_index']}")
    wait_for_count(page, 3)
    expect(page.locator("#range-select")).to_be_disabled()
    expect(page.locator("#histogram")).to_be_hidden()
    expect(page.locator(".summary")).to_contain_text("no timestamp field")
    expect(page.locator(".hit .sev").first).to_have_text(re.compile("info|warn|error"))
    page.fill("#query-input", "msg:second")
    page.press("#query-input", "Enter")
    wait_for_count(page, 1)
    page.screenshot(path=f"{spec['out']}/timeless.png")


def indexes_pages(page, spec):
    out = spec["out"]
    page.click("header nav >> text=Indexes")
    row = page.locator("tr", has=page.locator(f"a:text-is('{spec['index']}')"))
    expect(row).to_contain_text(f"{spec['total'] + 1:,}", timeout=TIMEOUT_MS)
    page.screenshot(path=f"{out}/indexes.png")
    row.locator("a").click()
    expect(page.locator("#index-config")).to_contain_text(f"index_id: {spec['index']}", timeout=TIMEOUT_MS)
    assert page.locator("table[aria-label=Splits] tbody tr").count() >= 1
    page.screenshot(path=f"{out}/index.png", full_page=True)

    # Deleting asks for the name, then the index is gone from the list.
    page.goto(f"{spec['endpoint']}/ui/indexes/{spec['scratch_index']}")
    page.click("#delete-index")
    confirm = page.locator("#delete-dialog button[type=submit]")
    expect(confirm).to_be_disabled()
    page.fill("#delete-confirm", "not-the-name")
    expect(confirm).to_be_disabled()
    page.fill("#delete-confirm", spec["scratch_index"])
    page.screenshot(path=f"{out}/delete.png")
    confirm.click()
    expect(page).to_have_url(re.compile(r"/ui/indexes$"), timeout=TIMEOUT_MS)
    expect(page.locator("table[aria-label=Indexes]")).to_be_visible(timeout=TIMEOUT_MS)
    assert page.locator(f"a:text-is('{spec['scratch_index']}')").count() == 0


def cluster_page(page, spec):
    page.click("header nav >> text=Cluster")
    row = page.locator("table[aria-label=Nodes] tr", has=page.locator(f"code:text-is('{spec['node_id']}')"))
    expect(row).to_contain_text("ready", timeout=TIMEOUT_MS)
    expect(page.locator("main")).to_contain_text("Indexing plan")
    page.screenshot(path=f"{spec['out']}/cluster.png")


def cluster_view(page, spec):
    """A cluster where one node was killed: the page shows it dead beside the live one,
    and the search on the live node finds what the dead one indexed."""
    page.goto(f"{spec['endpoint']}/ui/cluster")
    nodes = page.locator("table[aria-label=Nodes]")
    live = nodes.locator("tr", has=page.locator(f"code:text-is('{spec['live_node']}')"))
    dead = nodes.locator("tr", has=page.locator(f"code:text-is('{spec['dead_node']}')"))
    expect(live).to_contain_text("ready", timeout=TIMEOUT_MS)
    expect(live).to_contain_text("control_plane")
    expect(dead.first).to_contain_text("dead", timeout=TIMEOUT_MS)
    expect(page.locator("main")).to_contain_text("Indexing plan")
    page.screenshot(path=f"{spec['out']}/cluster.png")
    page.click("header nav >> text=Search")
    page.fill("#index-input", spec["index"])
    page.press("#index-input", "Enter")
    wait_for_count(page, spec["total"])
    page.screenshot(path=f"{spec['out']}/search.png")


def dark_theme(browser, spec):
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    if spec.get("api_key"):
        page.add_init_script(f"sessionStorage.setItem('quarry.apiKey', {json.dumps(spec['api_key'])})")
    page.goto(f"{spec['endpoint']}/ui/?index={spec['index']}")
    expect(page.locator("#results")).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    channels = [int(value) for value in re.findall(r"\d+", background)[:3]]
    assert max(channels) < 60, background
    page.screenshot(path=f"{spec['out']}/search-dark.png")
    context.close()


def main():
    spec = json.loads(sys.argv[1])
    measurements = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=spec.get("chromium", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            console_errors = []
            page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            if spec.get("mode") == "cluster":
                cluster_view(page, spec)
            else:
                search_page(page, spec, measurements)
            if spec.get("mode") != "cluster" and spec.get("full", True):
                timeless_index(page, spec)
                indexes_pages(page, spec)
                cluster_page(page, spec)
                dark_theme(browser, spec)
            # Expected errors: the ones the test provoked (bad query, 500, refused).
            unexpected = [
                error for error in console_errors
                if not re.search(r"400|500|ERR_CONNECTION_REFUSED|Failed to load resource|ERR_FAILED|401", error)
            ]
            assert not unexpected, unexpected
        finally:
            browser.close()
    print(json.dumps(measurements))


if __name__ == "__main__":
    main()
