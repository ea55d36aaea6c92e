/**
 * Field-name completion for the query input: pure text logic, so it is unit-tested and
 * the React component only renders what this returns.
 */
import { escapeFieldName } from './queryBuilder';
import { FieldInfo } from './types';

export interface Completion {
  /** Where the word being typed starts and ends in the query text. */
  start: number;
  end: number;
  prefix: string;
  fields: FieldInfo[];
}

const MAX_SUGGESTIONS = 20;
/** Characters that separate words; `+`, `-` and `!` are signs only at a word's start. */
const WORD_BOUNDARY = /[\s()]/;

/**
 * The fields that complete the word under the cursor. None while typing a value
 * (`field:va|`), inside a phrase, or when nothing has been typed yet.
 */
export function completeField(text: string, cursor: number, fields: FieldInfo[]): Completion | undefined {
  const quotesBefore = (text.slice(0, cursor).match(/(?<!\\)"/g) ?? []).length;
  if (quotesBefore % 2 === 1) {
    return undefined;
  }
  let start = cursor;
  while (start > 0 && !WORD_BOUNDARY.test(text[start - 1])) {
    start--;
  }
  while (start < cursor && '+-!'.includes(text[start])) {
    start++;
  }
  let end = cursor;
  while (end < text.length && !WORD_BOUNDARY.test(text[end]) && text[end] !== ':') {
    end++;
  }
  const prefix = text.slice(start, cursor);
  if (prefix === '' || prefix.includes(':') || /^(AND|OR|NOT)$/.test(prefix)) {
    return undefined;
  }
  const lower = prefix.toLowerCase();
  // Prefix matches first, then names containing the text (e.g. `dur` → attributes.duration_ms).
  const starts = fields.filter((f) => f.name.toLowerCase().startsWith(lower));
  const contains = fields.filter((f) => !f.name.toLowerCase().startsWith(lower) && f.name.toLowerCase().includes(lower));
  const matches = [...starts, ...contains].filter((f) => f.name !== prefix).slice(0, MAX_SUGGESTIONS);
  return matches.length > 0 ? { start, end, prefix, fields: matches } : undefined;
}

/** The query with the word replaced by `field:`, and where the cursor goes. */
export function applyCompletion(text: string, completion: Completion, field: string): { text: string; cursor: number } {
  const insert = `${escapeFieldName(field)}:`;
  // Do not double the colon when completing a name that already has one after it.
  const rest = text.slice(completion.end).startsWith(':') ? text.slice(completion.end + 1) : text.slice(completion.end);
  return { text: text.slice(0, completion.start) + insert + rest, cursor: completion.start + insert.length };
}
