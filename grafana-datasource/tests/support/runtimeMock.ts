/**
 * Stand-in for `@grafana/runtime` in Node (the real package needs a browser). Tests load
 * it with `jest.mock('@grafana/runtime', () => require('../support/runtimeMock'))`.
 *
 * - `getBackendSrv().fetch` is real HTTP (Node's global fetch), shaped like Grafana's:
 *   an Observable of `{data, status, ok}` that errors with `{status, data}` on non-2xx.
 *   Unit tests can swap it with `setFetchHandler`.
 * - `getTemplateSrv().replace` substitutes `$var`/`${var}` from `setTemplateVariables`,
 *   rendering multi-values the way Grafana's `lucene` format does.
 */
import { Observable } from 'rxjs';

export interface FetchOptions {
  url: string;
  method?: string;
  data?: unknown;
  headers?: Record<string, string>;
}

export interface FetchResult {
  data: unknown;
  status: number;
  ok: boolean;
}

type FetchHandler = (options: FetchOptions) => Promise<FetchResult>;

export const requests: FetchOptions[] = [];

/** What Grafana's data proxy adds to every request: the datasource's credentials. */
let proxyHeaders: Record<string, string> = {};

export function setProxyHeaders(headers: Record<string, string>) {
  proxyHeaders = headers;
}

async function realHttp(options: FetchOptions): Promise<FetchResult> {
  const response = await fetch(options.url, {
    method: options.method ?? 'GET',
    headers: { ...proxyHeaders, ...options.headers },
    body: typeof options.data === 'string' || options.data === undefined ? options.data : JSON.stringify(options.data),
  });
  const text = await response.text();
  let data: unknown = text;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: keep the text, as Grafana does.
  }
  if (!response.ok) {
    throw { status: response.status, statusText: response.statusText, data };
  }
  return { data, status: response.status, ok: true };
}

let handler: FetchHandler = realHttp;

export function setFetchHandler(next: FetchHandler | undefined) {
  handler = next ?? realHttp;
}

export function getBackendSrv() {
  return {
    fetch: (options: FetchOptions) =>
      new Observable<FetchResult>((subscriber) => {
        requests.push(options);
        handler(options).then(
          (result) => {
            subscriber.next(result);
            subscriber.complete();
          },
          (error) => subscriber.error(error)
        );
      }),
  };
}

let variables: Record<string, string | string[]> = {};

export function setTemplateVariables(next: Record<string, string | string[]>) {
  variables = next;
}

// Grafana's own `lucene` formatting (public/app/features/templating/formatRegistry.ts).
function luceneEscape(value: string): string {
  return value.replace(/([\!\*\+\-\=<>\s\&\|\(\)\[\]\{\}\^\~\?\:\\/"])/g, '\\$1');
}

function format(value: string | string[], fmt?: string): string {
  if (fmt !== 'lucene') {
    return Array.isArray(value) ? value.join(',') : value;
  }
  if (Array.isArray(value)) {
    return `(${value.map((v) => `"${luceneEscape(v)}"`).join(' OR ')})`;
  }
  return luceneEscape(value);
}

export function getTemplateSrv() {
  return {
    replace(target?: string, scopedVars?: Record<string, { value: string | string[] }>, fmt?: string): string {
      return (target ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced, bare) => {
        const name = braced ?? bare;
        const value = scopedVars?.[name]?.value ?? variables[name];
        return value === undefined ? whole : format(value, fmt);
      });
    },
    getVariables: () => [],
    containsTemplate: (target?: string) => /\$\w+|\$\{\w+\}/.test(target ?? ''),
    updateTimeRange: () => {},
  };
}
