// Index patterns as the search API takes them: a comma list of ids with `*` wildcards.

function patternToRegExp(pattern) {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`);
}

/** The ids among `indexIds` that `expression` names, in their order. */
export function matchingIndexes(expression, indexIds) {
  const patterns = expression
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => (part === "_all" ? "*" : part));
  const included = patterns.filter((part) => !part.startsWith("-")).map(patternToRegExp);
  const excluded = patterns.filter((part) => part.startsWith("-")).map((part) => patternToRegExp(part.slice(1)));
  return indexIds.filter((id) =>
    included.some((regex) => regex.test(id)) && !excluded.some((regex) => regex.test(id)));
}
