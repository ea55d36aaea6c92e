/**
 * The only module that talks HTTP: every call goes through `getBackendSrv().fetch` on the
 * datasource's proxy URL, so Grafana's data proxy adds the URL and credentials. Tests
 * wire `getBackendSrv` to a real HTTP client to exercise the same path.
 */
import { getBackendSrv } from '@grafana/runtime';
import { lastValueFrom } from 'rxjs';

import { serializeSearchRequest } from './queryBuilder';
import { FieldCapsResponse, QuarrySearchRequest, QuarrySearchResponse } from './types';

/** What `GET /api/v1/indexes/{id}` and each item of `GET /api/v1/indexes` share. */
export interface IndexMetadata {
  index_id?: string;
  timestamp_field?: string | null;
  index_config?: {
    index_id?: string;
    doc_mapping?: { timestamp_field?: string | null };
  };
}

export class QuarryApiError extends Error {
  constructor(
    message: string,
    readonly status?: number
  ) {
    super(message);
    this.name = 'QuarryApiError';
  }
}

/** Quarry answers `{"error": "..."}`; Grafana's fetch rejects with `{status, data}`. */
function toApiError(error: unknown, what: string): QuarryApiError {
  const e = error as { status?: number; data?: { error?: string; message?: string }; message?: string };
  const detail = e?.data?.error ?? e?.data?.message ?? e?.message ?? String(error);
  return new QuarryApiError(`Quarry ${what} failed${e?.status ? ` (${e.status})` : ''}: ${detail}`, e?.status);
}

export class QuarryApi {
  /** `baseUrl` is the datasource's proxy URL (`instanceSettings.url`), without a trailing slash. */
  constructor(private readonly baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  private async request<T>(what: string, method: 'GET' | 'POST', path: string, body?: string): Promise<T> {
    try {
      const response = await lastValueFrom(
        getBackendSrv().fetch<T>({
          url: `${this.baseUrl}${path}`,
          method,
          data: body,
          headers: body !== undefined ? { 'Content-Type': 'application/json' } : undefined,
          // Errors are shown by the panel/query editor; no global toast per failed query.
          showErrorAlert: false,
        })
      );
      return response.data;
    } catch (error) {
      throw toApiError(error, what);
    }
  }

  search(index: string, request: QuarrySearchRequest): Promise<QuarrySearchResponse> {
    // A pre-serialised body: search_after cursors are bigints (see serializeSearchRequest).
    return this.request('search', 'POST', `/api/v1/${encodeURIComponent(index)}/search`, serializeSearchRequest(request));
  }

  describeIndex(indexId: string): Promise<IndexMetadata> {
    return this.request('index description', 'GET', `/api/v1/indexes/${encodeURIComponent(indexId)}`);
  }

  listIndexes(): Promise<IndexMetadata[]> {
    return this.request('index list', 'GET', '/api/v1/indexes');
  }

  fieldCaps(index: string): Promise<FieldCapsResponse> {
    return this.request('field list', 'GET', `/api/v1/_elastic/${encodeURIComponent(index)}/_field_caps?fields=*`);
  }
}

/** `*` wildcards as in Quarry's index expressions (searcher/src/pattern.rs). */
export function wildcardMatch(pattern: string, text: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return regex.test(text);
}

/** The concrete index ids an expression (`a,b`, `logs-*`, `-excluded`) selects, in order. */
export function resolveIndexExpression(expression: string, indexIds: string[]): string[] {
  let selected: string[] = [];
  for (const part of expression.split(',').map((p) => p.trim()).filter(Boolean)) {
    if (part.startsWith('-')) {
      selected = selected.filter((id) => !wildcardMatch(part.slice(1), id));
    } else {
      for (const id of indexIds) {
        if (wildcardMatch(part, id) && !selected.includes(id)) {
          selected.push(id);
        }
      }
    }
  }
  return selected;
}

function timestampFieldOf(metadata: IndexMetadata): string | undefined {
  return metadata.timestamp_field ?? metadata.index_config?.doc_mapping?.timestamp_field ?? undefined;
}

function indexIdOf(metadata: IndexMetadata): string | undefined {
  return metadata.index_id ?? metadata.index_config?.index_id;
}

export interface TimestampDetection {
  timeField?: string;
  indexIds: string[];
  /** Set when the matching indexes disagree, since one query sorts them all by one field. */
  conflict?: string;
}

/**
 * The timestamp field of the indexes an expression selects, from their metadata. A single
 * concrete id is described directly; patterns list all indexes and match locally.
 */
export async function detectTimestampField(api: QuarryApi, indexExpression: string): Promise<TimestampDetection> {
  const expression = indexExpression.trim();
  let metadatas: IndexMetadata[];
  if (expression && !/[*,]/.test(expression) && !expression.startsWith('-')) {
    metadatas = [await api.describeIndex(expression)];
  } else {
    const all = await api.listIndexes();
    const ids = resolveIndexExpression(expression || '*', all.map((m) => indexIdOf(m) ?? ''));
    metadatas = all.filter((m) => ids.includes(indexIdOf(m) ?? ''));
  }
  const indexIds = metadatas.map((m) => indexIdOf(m) ?? '?');
  const fields = [...new Set(metadatas.map(timestampFieldOf).filter((f): f is string => !!f))];
  return {
    timeField: fields[0],
    indexIds,
    conflict: fields.length > 1 ? `indexes use different timestamp fields: ${fields.join(', ')}` : undefined,
  };
}
