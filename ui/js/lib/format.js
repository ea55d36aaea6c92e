// Text for the page: escaping, numbers, sizes, snippets, and which fields are which.

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

/** A snippet with `<b>` around matches (the search API's highlighting) as safe HTML with
 * `<mark>`: everything else in it is escaped, since it is the user's log text. */
export function snippetToHtml(snippet) {
  return String(snippet)
    .split(/(<b>|<\/b>)/)
    .map((part) => (part === "<b>" ? "<mark>" : part === "</b>" ? "</mark>" : escapeHtml(part)))
    .join("");
}

export function formatCount(count) {
  return Number(count ?? 0).toLocaleString("en-US");
}

export function formatBytes(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes ?? 0);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

const SEVERITY_FIELDS = [
  "severity_text", "severity", "level", "log.level", "loglevel", "log_level", "status",
];
const BODY_FIELDS = ["body", "message", "msg", "log", "body.message", "text"];

function firstPresent(candidates, names) {
  const lower = new Map(names.map((name) => [name.toLowerCase(), name]));
  for (const candidate of candidates) {
    const name = lower.get(candidate);
    if (name !== undefined) return name;
  }
  return null;
}

/** The field that holds a log line's severity, among `names` (field_caps' names). */
export function pickSeverityField(names) {
  return firstPresent(SEVERITY_FIELDS, names);
}

/** The field shown as the line: the index's first default search field (which may be a
 * path inside a json field, as OTEL's `body.message`), else a usual name. */
export function pickBodyField(names, defaultSearchFields = []) {
  return defaultSearchFields.find((name) => names.includes(name) || names.includes(name.split(".")[0])) ??
    firstPresent(BODY_FIELDS, names);
}

/** A CSS class for a severity value: OTEL's names and numbers, syslog's, log4j's. */
export function severityClass(value) {
  const text = String(value ?? "").toUpperCase();
  if (/^(FATAL|CRIT|CRITICAL|EMERG|EMERGENCY|ALERT|PANIC)/.test(text)) return "sev-fatal";
  if (/^(ERR|ERROR|SEVERE)/.test(text)) return "sev-error";
  if (/^(WARN|WARNING)/.test(text)) return "sev-warn";
  if (/^(INFO|NOTICE|INFORMATION)/.test(text)) return "sev-info";
  if (/^(DEBUG|TRACE|FINE|VERBOSE)/.test(text)) return "sev-debug";
  return "sev-other";
}

/** A field's value in a document, following dots into nested objects when the flat key is
 * absent (`attributes.http.status_code`). */
export function fieldValue(document, path) {
  if (document == null || path == null) return undefined;
  if (Object.prototype.hasOwnProperty.call(document, path)) return document[path];
  const parts = path.split(".");
  for (let split = parts.length - 1; split > 0; split -= 1) {
    const head = parts.slice(0, split).join(".");
    if (Object.prototype.hasOwnProperty.call(document, head)) {
      const inner = document[head];
      if (inner !== null && typeof inner === "object") {
        return fieldValue(inner, parts.slice(split).join("."));
      }
    }
  }
  return undefined;
}
