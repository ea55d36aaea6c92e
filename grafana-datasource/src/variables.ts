/**
 * Template-variable queries. Two spellings of the same thing:
 *   terms(service_name)            terms(service_name, 50)
 *   {"find": "terms", "field": "service_name", "size": 50, "query": "severity_text:ERROR"}
 * and the field list, for variables that pick a field:
 *   fields                         {"find": "fields", "aggregatable": true}
 */
export type VariableQuery =
  | { find: 'terms'; field: string; size: number; query?: string }
  | { find: 'fields'; aggregatable?: boolean };

export const DEFAULT_VARIABLE_TERMS_SIZE = 100;

export function parseVariableQuery(text: string): VariableQuery {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw new Error(`variable query is not valid JSON: ${(error as Error).message}`);
    }
    if (parsed.find === 'fields') {
      return { find: 'fields', aggregatable: parsed.aggregatable === true };
    }
    if (parsed.find !== 'terms' || typeof parsed.field !== 'string' || parsed.field === '') {
      throw new Error('variable query needs {"find": "terms", "field": "<field>"} or {"find": "fields"}');
    }
    return {
      find: 'terms',
      field: parsed.field,
      size: typeof parsed.size === 'number' && parsed.size > 0 ? parsed.size : DEFAULT_VARIABLE_TERMS_SIZE,
      query: typeof parsed.query === 'string' ? parsed.query : undefined,
    };
  }
  if (trimmed === 'fields' || trimmed === 'fields()') {
    return { find: 'fields' };
  }
  const call = trimmed.match(/^terms\(\s*([^,\s)]+)\s*(?:,\s*(\d+)\s*)?\)$/);
  if (call) {
    return { find: 'terms', field: call[1], size: call[2] ? Number(call[2]) : DEFAULT_VARIABLE_TERMS_SIZE };
  }
  throw new Error(`unknown variable query \`${trimmed}\`: use terms(<field>[, size]), fields, or the JSON form`);
}
