// Building DOM nodes without HTML strings, so that text from logs can never become markup.

/** An element with attributes (a `hidden: ""` attribute is set, `undefined` skipped) and
 * children (nodes or text). */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** A table from column headers and rows of cells (nodes or text). */
export function table(label, headers, rows) {
  const head = element("thead", {}, element("tr", {}, ...headers.map((header) => element("th", { scope: "col" }, header))));
  const body = element("tbody", {}, ...rows.map((cells) => element("tr", {}, ...cells.map((cell) => element("td", {}, cell)))));
  return element("table", { "aria-label": label }, head, body);
}
