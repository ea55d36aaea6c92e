// JSON values as YAML, to show an index's config as users write it.

const PLAIN = /^[A-Za-z_/.][A-Za-z0-9_./@-]*$/;
const RESERVED = new Set(["true", "false", "null", "yes", "no", "on", "off", "~"]);

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = String(value);
  return PLAIN.test(text) && !RESERVED.has(text.toLowerCase()) ? text : JSON.stringify(text);
}

function isCollection(value) {
  return value !== null && typeof value === "object" &&
    (Array.isArray(value) ? value.length > 0 : Object.keys(value).length > 0);
}

function emptyCollection(value) {
  return Array.isArray(value) ? "[]" : "{}";
}

function lines(value, indent) {
  const pad = "  ".repeat(indent);
  const out = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isCollection(item)) {
        const inner = lines(item, indent + 1);
        out.push(`${pad}- ${inner[0].trimStart()}`, ...inner.slice(1));
      } else {
        out.push(`${pad}- ${typeof item === "object" && item !== null ? emptyCollection(item) : scalar(item)}`);
      }
    }
    return out;
  }
  for (const [key, item] of Object.entries(value)) {
    if (isCollection(item)) {
      out.push(`${pad}${scalar(key)}:`, ...lines(item, indent + 1));
    } else {
      out.push(`${pad}${scalar(key)}: ${typeof item === "object" && item !== null ? emptyCollection(item) : scalar(item)}`);
    }
  }
  return out;
}

export function toYaml(value) {
  if (!isCollection(value)) {
    return `${typeof value === "object" && value !== null ? emptyCollection(value) : scalar(value)}\n`;
  }
  return `${lines(value, 0).join("\n")}\n`;
}
