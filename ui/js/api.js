// Calls to the node's REST API, with the API key the user gave (when auth is on), and its
// errors as sentences.

const KEY_STORAGE = "quarry.apiKey";

export class ApiError extends Error {
  constructor(status, message, details = {}) {
    super(message);
    this.status = status;
    Object.assign(this, details);
  }
}

/** The message of an error body: native `{"error": "…"}` or Elasticsearch's shape. */
export function errorMessage(body, status) {
  if (body && typeof body === "object") {
    const error = body.error;
    if (typeof error === "string") return error;
    if (error && typeof error === "object") {
      return error.reason ?? error.root_cause?.[0]?.reason ?? JSON.stringify(error);
    }
    if (typeof body.message === "string") return body.message;
  }
  return `the node answered HTTP ${status}`;
}

/** The character position a query syntax error names, converted to a UTF-16 index into
 * `query` (the API counts characters). */
export function syntaxErrorPosition(message, query) {
  const match = /syntax error at position (\d+)/.exec(message);
  if (!match) return null;
  const characters = Array.from(query);
  const position = Math.min(Number(match[1]), characters.length);
  return characters.slice(0, position).join("").length;
}

export class Api {
  constructor(base = "") {
    this.base = base;
    this.onUnauthorized = null;
  }

  get apiKey() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  set apiKey(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  async request(method, path, body, { signal } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const key = this.apiKey;
    if (key) headers.Authorization = `ApiKey ${key}`;
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, `The node did not answer (${error.message}). Is it running, and reachable from this browser?`);
    }
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!response.ok) {
      const message = parsed ? errorMessage(parsed, response.status) : (text.trim() || `the node answered HTTP ${response.status}`);
      const error = new ApiError(response.status, message);
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    return parsed;
  }

  get(path, options) {
    return this.request("GET", path, undefined, options);
  }

  post(path, body, options) {
    return this.request("POST", path, body, options);
  }

  delete(path, options) {
    return this.request("DELETE", path, undefined, options);
  }
}

/** A sentence for an error, with the status in words. */
export function describeError(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  if (error.status === 0) return error.message;
  const kind = {
    400: "Bad request", 401: "Not signed in", 403: "Not allowed", 404: "Not found",
    413: "Too large", 429: "Too many requests", 503: "Unavailable",
  }[error.status] ?? (error.status >= 500 ? "Server error" : "Error");
  return `${kind} (HTTP ${error.status}): ${error.message}`;
}
