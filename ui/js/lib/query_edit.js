// Edits of a query string in Quarry's query language, made from the fields sidebar.

// What ends a bare word in the query language (query/src/query_string.rs `is_special`),
// plus what would make the word an operator or a wildcard.
const SPECIAL = /[\s()":[\]{}^~\\*?]/;
const KEYWORDS = new Set(["AND", "OR", "NOT", "TO", "IN"]);

/** A field name as the query language reads it: special characters escaped. */
export function escapeField(name) {
  return name.replace(/[\s()":[\]{}^~\\*?]/g, (c) => `\\${c}`);
}

/** A value as one term: bare when it is a plain word, a quoted phrase otherwise. */
export function quoteValue(value) {
  const text = String(value);
  const plain = text !== "" && !SPECIAL.test(text) && !/^[-+!<>=]/.test(text) &&
    !KEYWORDS.has(text);
  return plain ? text : `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `field:value`, or `NOT field:value` when negated. */
export function clauseFor(field, value, negate = false) {
  const clause = `${escapeField(field)}:${quoteValue(value)}`;
  return negate ? `NOT ${clause}` : clause;
}

/** The query with `clause` added as a conjunct; an opposite clause of the same field and
 * value is removed first, and a clause already there is not added twice. */
export function addClause(query, field, value, negate = false) {
  const wanted = clauseFor(field, value, negate);
  const opposite = clauseFor(field, value, !negate);
  const text = removeConjunct(query.trim(), opposite);
  if (hasConjunct(text, wanted)) return text;
  if (text === "" || text === "*") return wanted;
  // AND binds tighter than OR: a query with an OR is grouped so the clause narrows all of it.
  const grouped = /\bOR\b|\|\|/.test(text) ? `(${text})` : text;
  return `${grouped} AND ${wanted}`;
}

function conjuncts(text) {
  return text.split(/\s+AND\s+/);
}

function hasConjunct(text, clause) {
  return conjuncts(text).some((part) => part.trim() === clause);
}

function removeConjunct(text, clause) {
  if (!hasConjunct(text, clause)) return text;
  return conjuncts(text).filter((part) => part.trim() !== clause).join(" AND ").trim();
}
