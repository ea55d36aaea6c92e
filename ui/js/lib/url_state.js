// The search page's whole state lives in the URL, so a search can be shared and reloaded.

export const DEFAULT_STATE = Object.freeze({
  index: "",
  query: "",
  from: "now-1h",
  to: "now",
  live: false,
});

/** The query string (with `?`, or "" when everything is default) for a state. */
export function stateToSearch(state) {
  const params = new URLSearchParams();
  if (state.index) params.set("index", state.index);
  if (state.query) params.set("query", state.query);
  if (state.from !== DEFAULT_STATE.from) params.set("from", String(state.from));
  if (state.to !== DEFAULT_STATE.to) params.set("to", String(state.to));
  if (state.live) params.set("live", "1");
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** The state a query string (`location.search`) holds; defaults fill what it lacks. */
export function stateFromSearch(search) {
  const params = new URLSearchParams(search);
  return {
    index: params.get("index") ?? DEFAULT_STATE.index,
    query: params.get("query") ?? DEFAULT_STATE.query,
    from: params.get("from") || DEFAULT_STATE.from,
    to: params.get("to") || DEFAULT_STATE.to,
    live: params.get("live") === "1",
  };
}
