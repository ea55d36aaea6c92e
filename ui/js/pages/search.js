// The search page (like Kibana's Discover): query bar, time range, log-volume histogram,
// hits with infinite scroll, a fields sidebar and live mode. Its state is the URL's.

import { ApiError, describeError, syntaxErrorPosition } from "../api.js";
import { Histogram } from "../histogram.js";
import {
  escapeHtml, fieldValue, formatCount, pickBodyField, pickSeverityField, severityClass,
  snippetToHtml,
} from "../lib/format.js";
import { stackBuckets, volumeAggregation } from "../lib/histogram_data.js";
import { matchingIndexes } from "../lib/index_pattern.js";
import { addClause } from "../lib/query_edit.js";
import {
  RELATIVE_RANGES, bucketInterval, describeRange, formatTimestamp, intervalLabel, isRelative,
  resolveTime, timestampMs, toDatetimeLocal,
} from "../lib/time.js";
import { stateFromSearch, stateToSearch } from "../lib/url_state.js";
import { element, clear } from "../dom.js";

const PAGE_SIZE = 50;
const LIVE_PERIOD_MS = 5000;
const TOP_VALUES = 5;

export class SearchPage {
  constructor(root, api, navigate) {
    this.root = root;
    this.api = api;
    this.navigate = navigate;
    this.state = stateFromSearch(location.search);
    this.indexes = [];
    this.fields = [];
    this.schema = null;
    this.hits = [];
    this.nextSearchAfter = null;
    this.numHits = 0;
    this.generation = 0;
    this.liveTimer = null;
    this.renderDom();
  }

  /** Called when the URL changed under the page (back/forward). */
  async show() {
    this.state = stateFromSearch(location.search);
    await this.start();
  }

  destroy() {
    this.stopLive();
    this.observer?.disconnect();
  }

  renderDom() {
    clear(this.root);
    this.form = element("form", { class: "toolbar", role: "search" });
    this.indexInput = element("input", {
      id: "index-input", list: "index-list", autocomplete: "off", spellcheck: "false",
      placeholder: "index or pattern", "aria-label": "Index or index pattern",
    });
    this.indexList = element("datalist", { id: "index-list" });
    this.queryInput = element("input", {
      id: "query-input", type: "search", autocomplete: "off", spellcheck: "false",
      placeholder: "severity_text:ERROR AND \"connection reset\"", "aria-label": "Query",
    });
    this.rangeSelect = element("select", { id: "range-select", "aria-label": "Time range" });
    for (const range of RELATIVE_RANGES) {
      this.rangeSelect.append(element("option", { value: range.from }, range.label));
    }
    this.rangeSelect.append(element("option", { value: "custom" }, "Absolute…"));
    this.fromInput = element("input", { id: "from-input", type: "datetime-local", step: "1", "aria-label": "From" });
    this.toInput = element("input", { id: "to-input", type: "datetime-local", step: "1", "aria-label": "To" });
    this.absolute = element("span", { class: "absolute-range", hidden: "" },
      this.fromInput, element("span", { "aria-hidden": "true" }, "→"), this.toInput);
    this.liveInput = element("input", { id: "live-input", type: "checkbox" });
    const liveLabel = element("label", { class: "live", for: "live-input" }, this.liveInput, " Live");
    this.liveStatus = element("span", { class: "live-status", "aria-live": "polite" });
    this.form.append(
      element("label", { class: "visually-hidden", for: "index-input" }, "Index"),
      this.indexInput, this.indexList,
      element("label", { class: "visually-hidden", for: "query-input" }, "Query"),
      this.queryInput, element("button", { type: "submit", class: "primary" }, "Search"),
      this.rangeSelect, this.absolute, liveLabel, this.liveStatus,
    );
    this.errorBox = element("div", { class: "error-box", role: "alert", hidden: "" });
    this.summary = element("div", { class: "summary", "aria-live": "polite" });
    this.legend = element("div", { class: "legend" });
    this.canvas = element("canvas", {
      id: "histogram", class: "histogram", role: "img",
      "aria-label": "Log volume over time; drag to zoom, click a bar to narrow to it",
    });
    this.results = element("ol", { id: "results", class: "results", "aria-label": "Log lines" });
    this.more = element("div", { class: "more" });
    this.fieldFilter = element("input", {
      type: "search", placeholder: "Filter fields", "aria-label": "Filter fields", class: "field-filter",
    });
    this.fieldList = element("ul", { class: "field-list", id: "field-list" });
    const sidebar = element("aside", { class: "sidebar", "aria-label": "Fields" },
      element("h2", {}, "Fields"), this.fieldFilter, this.fieldList);
    const main = element("section", { class: "main" },
      this.summary, this.canvas, this.legend, this.results, this.more);
    this.root.append(this.form, this.errorBox, element("div", { class: "layout" }, sidebar, main));

    this.histogram = new Histogram(this.canvas, {
      severityClass,
      onRange: (fromMs, toMs) => this.update({ from: String(Math.round(fromMs)), to: String(Math.round(toMs)), live: false }),
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.update(this.stateFromForm());
    });
    this.rangeSelect.addEventListener("change", () => {
      if (this.rangeSelect.value === "custom") {
        const now = Date.now();
        this.fromInput.value = toDatetimeLocal(resolveTime(this.state.from, now));
        this.toInput.value = toDatetimeLocal(resolveTime(this.state.to, now));
        this.absolute.hidden = false;
        this.fromInput.focus();
        return;
      }
      this.update({ ...this.stateFromForm(), from: this.rangeSelect.value, to: "now" });
    });
    this.indexInput.addEventListener("change", () => this.update(this.stateFromForm()));
    this.liveInput.addEventListener("change", () => {
      const live = this.liveInput.checked;
      const relative = isRelative(this.state.from) && this.state.to === "now";
      this.update({ ...this.stateFromForm(), live, ...(live && !relative ? { from: "now-15m", to: "now" } : {}) });
    });
    this.fieldFilter.addEventListener("input", () => this.renderFields());
    this.results.addEventListener("click", (event) => {
      const line = event.target.closest(".hit-line");
      if (line) this.toggleHit(line.parentElement);
    });
    this.results.addEventListener("keydown", (event) => this.onResultsKey(event));
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
    }, { rootMargin: "400px" });
    this.observer.observe(this.more);
  }

  stateFromForm() {
    const fromAbsolute = this.rangeSelect.value === "custom";
    const absoluteMs = (input, fallback) => {
      const ms = Date.parse(input.value);
      return Number.isNaN(ms) ? fallback : String(ms);
    };
    return {
      index: this.indexInput.value.trim(),
      query: this.queryInput.value,
      from: fromAbsolute ? absoluteMs(this.fromInput, this.state.from) : this.rangeSelect.value,
      to: fromAbsolute ? absoluteMs(this.toInput, this.state.to) : "now",
      live: this.liveInput.checked && !fromAbsolute,
    };
  }

  /** Moves to a new state: a new URL (one history entry) and a new search. */
  update(changes) {
    this.state = { ...this.state, ...changes };
    history.pushState(null, "", `/ui/${stateToSearch(this.state)}`);
    this.start();
  }

  fillForm() {
    this.indexInput.value = this.state.index;
    this.queryInput.value = this.state.query;
    const relative = isRelative(this.state.from) && this.state.to === "now";
    // A relative range from a shared URL that is not a preset gets an option of its own.
    if (relative && !this.rangeSelect.querySelector(`option[value="${CSS.escape(this.state.from)}"]`)) {
      this.rangeSelect.insertBefore(
        element("option", { value: this.state.from }, `Since ${this.state.from}`),
        this.rangeSelect.lastElementChild,
      );
    }
    const absolute = !relative;
    this.rangeSelect.value = absolute ? "custom" : this.state.from;
    this.absolute.hidden = !absolute;
    if (absolute) {
      const now = Date.now();
      try {
        this.fromInput.value = toDatetimeLocal(resolveTime(this.state.from, now));
        this.toInput.value = toDatetimeLocal(resolveTime(this.state.to, now));
      } catch {
        // The error box says what was wrong with the URL's range.
      }
    }
    this.liveInput.checked = this.state.live;
  }

  async start() {
    this.fillForm();
    this.hideError();
    try {
      // With the index known from the URL, its fields load while the index list does.
      const caps = this.state.index && this.schema?.index !== this.state.index
        ? this.fetchFieldCaps(this.state.index) : null;
      // Awaited below; this only keeps a failure meanwhile from being reported as unhandled.
      caps?.catch(() => {});
      await this.loadIndexes();
      if (!this.state.index) {
        const fallback = this.indexes.find((index) => index.index_config.index_id === "demo-logs") ?? this.indexes[0];
        if (!fallback) {
          this.showMessage("There is no index yet. Create one with `quarry index create` or POST /api/v1/indexes, then ingest logs.");
          return;
        }
        this.state.index = fallback.index_config.index_id;
        history.replaceState(null, "", `/ui/${stateToSearch(this.state)}`);
        this.indexInput.value = this.state.index;
      }
      await this.loadSchema(this.state.index === caps?.index ? caps : null);
      await this.search();
    } catch (error) {
      this.generation += 1;
      this.clearResults();
      this.showError(error);
    }
    this.scheduleLive();
  }

  async loadIndexes() {
    if (this.indexes.length > 0) return;
    this.indexes = await this.api.get("/api/v1/indexes");
    clear(this.indexList);
    for (const index of this.indexes) {
      this.indexList.append(element("option", { value: index.index_config.index_id }));
    }
  }

  fetchFieldCaps(index) {
    const request = this.api.get(`/api/v1/_elastic/${encodeURIComponent(index)}/_field_caps?fields=*`);
    request.index = index;
    return request;
  }

  /** The fields of the state's index; `capsRequest` is its `_field_caps` already asked. */
  async loadSchema(capsRequest = null) {
    const index = this.state.index;
    if (this.schema?.index === index) return;
    const caps = await (capsRequest ?? this.fetchFieldCaps(index));
    const ids = matchingIndexes(index, this.indexes.map((meta) => meta.index_config.index_id));
    const config = this.indexes.find((meta) => meta.index_config.index_id === ids[0])?.index_config;
    const fields = Object.entries(caps.fields ?? {})
      .filter(([name]) => !name.startsWith("_"))
      .map(([name, types]) => {
        const type = Object.keys(types)[0];
        return { name, type, aggregatable: Object.values(types).some((caps) => caps.aggregatable) };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
    const names = fields.map((field) => field.name);
    const timestampField = config?.doc_mapping?.timestamp_field ?? null;
    const severityField = pickSeverityField(fields.filter((field) => field.aggregatable).map((field) => field.name));
    const bodyField = pickBodyField(names, config?.search_settings?.default_search_fields ?? []);
    const bodyType = fields.find((field) => field.name === bodyField)?.type;
    this.schema = { index, fields, timestampField, severityField, bodyField, snippets: bodyType === "text" };
    const timeless = !timestampField;
    this.rangeSelect.disabled = timeless;
    this.liveInput.disabled = timeless;
    this.canvas.hidden = timeless;
    this.rangeSelect.title = timeless ? `${index} has no timestamp field: every document is searched` : "";
    this.topValues = new Map();
    this.renderFields();
  }

  searchBody(fromMs, toMs) {
    const query = this.state.query.trim();
    const body = { query: query === "" ? "*" : query, max_hits: PAGE_SIZE };
    // An index without a timestamp field has no time to range over: the API refuses one.
    if (this.schema.timestampField) {
      body.start_timestamp = Math.floor(fromMs / 1000);
      body.end_timestamp = Math.ceil(toMs / 1000);
    }
    if (query !== "" && this.schema.snippets && this.schema.bodyField) {
      body.snippet_fields = [this.schema.bodyField];
    }
    return body;
  }

  timeRange() {
    const now = Date.now();
    const fromMs = resolveTime(this.state.from, now);
    const toMs = resolveTime(this.state.to, now);
    if (!(fromMs < toMs)) throw new Error("The time range is empty: its start is not before its end.");
    return { fromMs, toMs };
  }

  /** The first page and the histogram, in one request. */
  async search({ live = false } = {}) {
    const generation = ++this.generation;
    const started = performance.now();
    const { fromMs, toMs } = this.timeRange();
    const interval = bucketInterval(toMs - fromMs);
    const body = this.searchBody(fromMs, toMs);
    if (this.schema.timestampField) {
      body.aggs = volumeAggregation(this.schema.timestampField, this.schema.severityField, interval, fromMs, toMs);
    }
    let response;
    try {
      response = await this.api.post(`/api/v1/${encodeURIComponent(this.state.index)}/search`, body);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && body.snippet_fields && /snippet/.test(error.message)) {
        this.schema.snippets = false;
        return this.search({ live });
      }
      throw error;
    }
    if (generation !== this.generation) return;
    this.numHits = response.num_hits;
    const hits = response.hits.map((hit, i) => ({ doc: hit, snippet: response.snippets?.[i] }));
    // Lines prepended in live mode keep the cursor where the list ends; a new list starts
    // from the new answer's.
    if (!(live && this.hits.length > 0 && this.prependNew(hits))) {
      this.hits = hits;
      this.nextSearchAfter = response.next_search_after ?? null;
      clear(this.results);
      this.appendHits(hits);
    }
    const data = stackBuckets(response.aggregations, interval);
    this.histogram.setData(data, fromMs, toMs);
    this.renderLegend(data.series);
    this.renderSummary(response, interval);
    this.renderMore();
    const renderMs = performance.now() - started;
    this.results.dataset.renderMs = renderMs.toFixed(1);
    this.results.dataset.state = "done";
    if (window.quarryTimings === undefined) {
      // From navigation start to the first rendered results, for the browser test.
      window.quarryTimings = { firstResultsMs: performance.now(), firstSearchMs: renderMs };
    }
    if (response.num_hits === 0 && this.schema.timestampField) this.explainNoHits(fromMs);
    if (!live) this.refreshOpenFields();
    requestAnimationFrame(() => this.fillScreen());
  }

  /** Loads more while the end of the list is in view (a short list on a tall screen). */
  fillScreen() {
    if (this.more.getBoundingClientRect().top < window.innerHeight + 400) this.loadMore();
  }

  /** Top values of the fields left open follow the new results. */
  refreshOpenFields() {
    for (const details of this.fieldList.querySelectorAll("details[open]")) {
      this.loadTopValues(details.field, details.querySelector(".field-values"));
    }
  }

  renderSummary(response, interval) {
    const shown = `${formatCount(response.num_hits)} ${response.num_hits === 1 ? "log" : "logs"}`;
    const range = this.schema.timestampField
      ? describeRange(this.state.from, this.state.to)
      : "all time (the index has no timestamp field)";
    const took = `${(response.elapsed_time_micros / 1000).toFixed(1)} ms`;
    const partial = response.errors?.length ? ` · ${response.errors.length} splits could not be searched` : "";
    const buckets = this.schema.timestampField ? ` · ${intervalLabel(interval)} buckets` : "";
    this.summary.innerHTML = `<strong id="hit-count">${shown}</strong> · ${escapeHtml(range)}` +
      `${buckets} · took ${took}${escapeHtml(partial)}`;
  }

  async explainNoHits(fromMs) {
    const ids = matchingIndexes(this.state.index, this.indexes.map((meta) => meta.index_config.index_id));
    if (ids.length !== 1) return;
    try {
      const description = await this.api.get(`/api/v1/indexes/${encodeURIComponent(ids[0])}`);
      const newest = description.max_timestamp;
      if (newest == null || description.num_published_docs === 0) {
        this.more.textContent = "This index holds no searchable logs yet.";
        return;
      }
      const newestMs = timestampMs(newest);
      if (newestMs < fromMs) {
        clear(this.more);
        const button = element("button", { type: "button" }, "Show the range of this index");
        button.addEventListener("click", () => this.update({
          from: String(Math.floor(timestampMs(description.min_timestamp) / 1000) * 1000),
          to: String(Math.ceil((newestMs + 1) / 1000) * 1000),
          live: false,
        }));
        this.more.append(`No logs in this range. The newest log in ${ids[0]} is from ${formatTimestamp(newestMs)}. `, button);
      }
    } catch {
      // The hint is a nicety; the empty result stands on its own.
    }
  }

  renderLegend(series) {
    clear(this.legend);
    for (const name of series) {
      this.legend.append(element("span", { class: `legend-item ${severityClass(name)}` },
        element("span", { class: "swatch", "aria-hidden": "true" }), name));
    }
  }

  renderMore() {
    if (this.hits.length === 0) {
      this.more.textContent = this.numHits === 0 ? "No logs match." : "";
    } else if (this.nextSearchAfter && this.hits.length < this.numHits) {
      this.more.textContent = "Loading more…";
    } else {
      this.more.textContent = `All ${formatCount(this.hits.length)} shown.`;
    }
  }

  async loadMore() {
    if (this.loadingMore || !this.nextSearchAfter || this.hits.length >= this.numHits || !this.schema) return;
    this.loadingMore = true;
    const generation = this.generation;
    try {
      const { fromMs, toMs } = this.timeRange();
      const body = { ...this.searchBody(fromMs, toMs), search_after: this.nextSearchAfter };
      const response = await this.api.post(`/api/v1/${encodeURIComponent(this.state.index)}/search`, body);
      if (generation !== this.generation) return;
      const hits = response.hits.map((hit, i) => ({ doc: hit, snippet: response.snippets?.[i] }));
      this.hits.push(...hits);
      this.nextSearchAfter = hits.length > 0 ? response.next_search_after ?? null : null;
      this.appendHits(hits);
      this.renderMore();
    } catch (error) {
      this.showError(error);
    } finally {
      this.loadingMore = false;
    }
    // The end may still be in view: keep filling the screen.
    requestAnimationFrame(() => this.fillScreen());
  }

  hitKey(hit) {
    return JSON.stringify(hit.doc);
  }

  /** Prepends the hits newer than the newest shown; false when the newest shown is not
   * among `hits` (too much arrived), and the list must be replaced. */
  prependNew(hits) {
    const newestKey = this.hitKey(this.hits[0]);
    const known = hits.findIndex((hit) => this.hitKey(hit) === newestKey);
    if (known === -1) return false;
    const fresh = hits.slice(0, known);
    this.hits.unshift(...fresh);
    this.results.prepend(...fresh.map((hit) => this.renderHit(hit, true)));
    return true;
  }

  appendHits(hits) {
    const fragment = document.createDocumentFragment();
    for (const hit of hits) fragment.append(this.renderHit(hit, false));
    this.results.append(fragment);
  }

  renderHit(hit, fresh) {
    const { timestampField, severityField, bodyField } = this.schema;
    const doc = hit.doc;
    const time = timestampField ? timestampMs(fieldValue(doc, timestampField)) : NaN;
    const severity = severityField ? fieldValue(doc, severityField) : undefined;
    const snippet = bodyField ? hit.snippet?.[bodyField]?.[0] : undefined;
    let bodyHtml;
    if (snippet) {
      bodyHtml = snippetToHtml(snippet);
    } else {
      const value = bodyField ? fieldValue(doc, bodyField) : undefined;
      bodyHtml = escapeHtml(value === undefined ? JSON.stringify(doc) : typeof value === "string" ? value : JSON.stringify(value));
    }
    const row = element("li", { class: fresh ? "hit fresh" : "hit", tabindex: "0", "aria-expanded": "false" });
    const line = element("div", { class: "hit-line" });
    line.innerHTML =
      `<time class="hit-time">${escapeHtml(Number.isNaN(time) ? "" : formatTimestamp(time))}</time>` +
      (severityField ? `<span class="sev ${severityClass(severity)}">${escapeHtml(severity ?? "")}</span>` : "") +
      `<span class="hit-body">${bodyHtml}</span>`;
    row.append(line);
    row.hitDocument = doc;
    return row;
  }

  toggleHit(row) {
    const open = row.getAttribute("aria-expanded") === "true";
    row.setAttribute("aria-expanded", String(!open));
    const existing = row.querySelector(".hit-json");
    if (open) {
      existing?.remove();
      return;
    }
    row.append(element("pre", { class: "hit-json" }, JSON.stringify(row.hitDocument, null, 2)));
  }

  onResultsKey(event) {
    const row = event.target.closest(".hit");
    if (!row) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.toggleHit(row);
    } else if (event.key === "ArrowDown" || event.key === "j") {
      event.preventDefault();
      row.nextElementSibling?.focus();
    } else if (event.key === "ArrowUp" || event.key === "k") {
      event.preventDefault();
      (row.previousElementSibling ?? this.queryInput).focus();
    }
  }

  renderFields() {
    if (!this.schema) return;
    clear(this.fieldList);
    const filter = this.fieldFilter.value.trim().toLowerCase();
    for (const field of this.schema.fields) {
      if (filter && !field.name.toLowerCase().includes(filter)) continue;
      const details = element("details", { class: "field" });
      const summary = element("summary", {},
        element("span", { class: "field-name" }, field.name), element("span", { class: "field-type" }, field.type));
      const values = element("div", { class: "field-values" });
      details.append(summary, values);
      details.field = field;
      details.addEventListener("toggle", () => {
        if (details.open) this.loadTopValues(field, values);
      });
      this.fieldList.append(element("li", {}, details));
    }
  }

  async loadTopValues(field, container) {
    clear(container);
    if (!field.aggregatable) {
      container.textContent = "No top values: the field is not a fast field.";
      return;
    }
    container.textContent = "Loading…";
    try {
      const { fromMs, toMs } = this.timeRange();
      const body = this.searchBody(fromMs, toMs);
      delete body.snippet_fields;
      body.max_hits = 0;
      body.aggs = { top: { terms: { field: field.name, size: TOP_VALUES } } };
      const response = await this.api.post(`/api/v1/${encodeURIComponent(this.state.index)}/search`, body);
      clear(container);
      const buckets = response.aggregations?.top?.buckets ?? [];
      if (buckets.length === 0) {
        container.textContent = "No values in these results.";
        return;
      }
      const list = element("ul", { class: "top-values" });
      for (const bucket of buckets) {
        const value = bucket.key_as_string ?? bucket.key;
        const share = response.num_hits > 0 ? Math.round((bucket.doc_count / response.num_hits) * 100) : 0;
        const include = element("button", { type: "button", class: "value-include", title: `Filter for ${field.name}: ${value}` }, String(value));
        const exclude = element("button", { type: "button", class: "value-exclude", "aria-label": `Filter out ${field.name}: ${value}`, title: `Filter out ${field.name}: ${value}` }, "−");
        include.addEventListener("click", () => this.filterBy(field.name, value, false));
        exclude.addEventListener("click", () => this.filterBy(field.name, value, true));
        list.append(element("li", {}, include,
          element("span", { class: "value-count" }, `${formatCount(bucket.doc_count)} · ${share}%`), exclude));
      }
      container.append(list);
    } catch (error) {
      container.textContent = describeError(error);
    }
  }

  filterBy(field, value, negate) {
    this.update({ query: addClause(this.state.query, field, value, negate) });
  }

  scheduleLive() {
    this.stopLive();
    if (!this.state.live) {
      this.liveStatus.textContent = "";
      return;
    }
    this.liveTimer = setInterval(() => this.liveTick(), LIVE_PERIOD_MS);
    this.liveStatus.textContent = "every 5 s";
  }

  stopLive() {
    if (this.liveTimer !== null) clearInterval(this.liveTimer);
    this.liveTimer = null;
  }

  async liveTick() {
    // New lines would push what the user is reading away: wait while they scroll or read.
    const reading = window.scrollY > 40 || this.results.querySelector('[aria-expanded="true"]');
    if (reading) {
      this.liveStatus.textContent = "paused while you scroll";
      return;
    }
    this.liveStatus.textContent = "every 5 s";
    try {
      await this.search({ live: true });
    } catch (error) {
      this.showError(error);
    }
  }

  showMessage(text) {
    clear(this.results);
    this.summary.textContent = "";
    this.more.textContent = text;
  }

  hideError() {
    this.errorBox.hidden = true;
    clear(this.errorBox);
    this.queryInput.removeAttribute("aria-invalid");
  }

  clearResults() {
    this.hits = [];
    this.nextSearchAfter = null;
    this.numHits = 0;
    clear(this.results);
    clear(this.legend);
    this.summary.textContent = "";
    this.more.textContent = "";
    this.histogram.setData({ buckets: [], series: [] }, 0, 1);
  }

  showError(error) {
    clear(this.errorBox);
    this.errorBox.hidden = false;
    const message = describeError(error);
    this.errorBox.append(element("p", {}, message));
    const position = error instanceof ApiError ? syntaxErrorPosition(error.message, this.state.query) : null;
    if (position !== null) {
      // The query with a caret under the place the parser stopped.
      const pointer = `${" ".repeat(position)}^`;
      this.errorBox.append(element("pre", { class: "query-error", id: "query-error" },
        `${this.state.query}\n${pointer}`));
      this.errorBox.dataset.position = String(position);
      this.queryInput.setAttribute("aria-invalid", "true");
      this.queryInput.focus();
      this.queryInput.setSelectionRange(position, position);
    } else {
      delete this.errorBox.dataset.position;
      this.queryInput.removeAttribute("aria-invalid");
    }
    if (this.results.dataset.state !== "done") this.results.dataset.state = "error";
  }
}
