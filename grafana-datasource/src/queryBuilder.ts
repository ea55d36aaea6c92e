/**
 * Pure functions that turn a Grafana query (plus time range, ad hoc filters and
 * template variables) into Quarry search requests. No I/O here, so all of it is
 * unit-tested with plain fixtures.
 */
import { AdHocVariableFilter, LogRowContextQueryDirection } from '@grafana/data';

import {
  DEFAULT_GROUP_BY_LIMIT,
  DEFAULT_LOGS_LIMIT,
  DEFAULT_PERCENTS,
  MetricType,
  QuarryQuery,
  QuarrySearchRequest,
  ResolvedSettings,
} from './types';

/** Quarry refuses `start_offset + max_hits` over this (deeper pages use search_after). */
export const MAX_HITS_CAP = 10_000;
/** Histogram buckets are never finer than this: Quarry's time bounds are whole seconds. */
export const MIN_INTERVAL_MS = 1000;
/** How many distinct levels the log-volume histogram splits by. */
export const LOGS_VOLUME_LEVELS = 20;

/** Aggregation names this plugin uses; the response parser reads the same names. */
export const AGG = {
  histogram: 'histogram',
  metric: 'metric',
  group: 'group',
  levels: 'levels',
  values: 'values',
} as const;

export interface QueryContext {
  settings: ResolvedSettings;
  /** The dashboard/Explore time range, epoch milliseconds (Grafana's `to` is inclusive). */
  range: { fromMs: number; toMs: number };
  /** Grafana's suggested bucket width (`request.intervalMs`). */
  intervalMs?: number;
  adhocFilters?: AdHocVariableFilter[];
  /** Template-variable interpolation for query strings (`getTemplateSrv().replace(..., 'lucene')`). */
  interpolateQuery?: (text: string) => string;
  /** Template-variable interpolation for field names and plain values. */
  interpolateText?: (text: string) => string;
}

const identity = (text: string) => text;

// ---------------------------------------------------------------- query strings

/** A value as a quoted phrase: only `\` and `"` are special inside quotes. */
export function quoteValue(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Characters that end a bare word in Quarry's query language (searcher/src/query_string.rs). */
const BARE_WORD_SPECIALS = /[\s()":[\]{}^~\\*?]/g;

/** A field name as the query language reads it: `attributes.http.status` stays as is. */
export function escapeFieldName(name: string): string {
  return name.replace(BARE_WORD_SPECIALS, (c) => `\\${c}`);
}

/** A wildcard pattern: `*` and `?` stay wildcards, every other special is escaped. */
function escapeWildcardPattern(pattern: string): string {
  return pattern.replace(/[\s()":[\]{}^~\\]/g, (c) => `\\${c}`);
}

/** A bare word for a range bound (`field:>10`): numbers pass, anything else is escaped. */
function escapeRangeBound(value: string): string {
  return value.replace(BARE_WORD_SPECIALS, (c) => `\\${c}`);
}

/**
 * One ad hoc filter as a query-string clause. Quarry has no regular expressions, so
 * `=~`/`!~` take Quarry wildcard patterns (`err*`, `?ail`) instead.
 */
export function adHocFilterToClause(filter: AdHocVariableFilter): string {
  const field = escapeFieldName(filter.key);
  const values = filter.values && filter.values.length > 0 ? filter.values : [filter.value];
  const anyOf = (vs: string[]) =>
    vs.length === 1 ? `${field}:${quoteValue(vs[0])}` : `(${vs.map((v) => `${field}:${quoteValue(v)}`).join(' OR ')})`;
  switch (filter.operator) {
    case '=':
      return `${field}:${quoteValue(filter.value)}`;
    case '!=':
      return `NOT ${field}:${quoteValue(filter.value)}`;
    case '=|':
      return anyOf(values);
    case '!=|':
      return `NOT ${anyOf(values)}`;
    case '=~':
      return `${field}:${escapeWildcardPattern(filter.value)}`;
    case '!~':
      return `NOT ${field}:${escapeWildcardPattern(filter.value)}`;
    case '<':
    case '>':
    case '<=':
    case '>=':
      return `${field}:${filter.operator}${escapeRangeBound(filter.value)}`;
    default:
      throw new Error(`ad hoc filter operator \`${filter.operator}\` is not supported by Quarry`);
  }
}

/**
 * AND-s clauses together. Each is parenthesised so that an `OR` inside the user's query
 * cannot swallow a filter; `NOT x` alone is wrapped too, which Quarry reads as "all but x".
 */
export function andClauses(clauses: Array<string | undefined>): string {
  const present = clauses.map((c) => (c ?? '').trim()).filter((c) => c !== '' && c !== '*');
  if (present.length === 0) {
    return '';
  }
  if (present.length === 1) {
    return present[0];
  }
  return present.map((c) => `(${c})`).join(' AND ');
}

/** The query string actually sent: user query (variables interpolated) AND ad hoc filters. */
export function buildQueryString(userQuery: string | undefined, ctx: QueryContext): string {
  const interpolate = ctx.interpolateQuery ?? identity;
  const filters = (ctx.adhocFilters ?? []).map(adHocFilterToClause);
  return andClauses([interpolate(userQuery ?? ''), ...filters]);
}

// ---------------------------------------------------------------- time

/**
 * Quarry's window is `[start, end)` in whole seconds while Grafana's is `[from, to]` in
 * milliseconds: round outward so no event in Grafana's range is lost.
 */
export function toSearchWindow(range: QueryContext['range']): { start_timestamp: number; end_timestamp: number } {
  return {
    start_timestamp: Math.floor(range.fromMs / 1000),
    end_timestamp: Math.floor(range.toMs / 1000) + 1,
  };
}

/** Grafana's interval as a date_histogram `fixed_interval`, at least one second. */
export function fixedInterval(intervalMs: number | undefined): string {
  const ms = Math.max(MIN_INTERVAL_MS, Math.round(intervalMs ?? MIN_INTERVAL_MS));
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function dateHistogram(ctx: QueryContext): Record<string, unknown> {
  return {
    field: ctx.settings.timeField,
    fixed_interval: fixedInterval(ctx.intervalMs),
    // Empty buckets as zeros across the whole range, so graphs do not interpolate over gaps.
    min_doc_count: 0,
    extended_bounds: { min: ctx.range.fromMs, max: ctx.range.toMs },
  };
}

// ---------------------------------------------------------------- requests

function clampHits(limit: number | undefined, fallback: number): number {
  const n = Math.floor(limit ?? fallback);
  return Math.min(MAX_HITS_CAP, Math.max(1, Number.isFinite(n) ? n : fallback));
}

export function buildLogsRequest(query: QuarryQuery, ctx: QueryContext): QuarrySearchRequest {
  return {
    query: buildQueryString(query.query, ctx),
    ...toSearchWindow(ctx.range),
    max_hits: clampHits(query.limit, DEFAULT_LOGS_LIMIT),
    sort_by: `-${ctx.settings.timeField}`,
  };
}

/** The aggregation computing one metric, or undefined for `count` (buckets carry doc_count). */
export function metricAggregation(
  type: MetricType,
  field: string | undefined,
  percents: number[] | undefined
): Record<string, unknown> | undefined {
  if (type === 'count') {
    return undefined;
  }
  if (!field) {
    throw new Error(`metric \`${type}\` needs a field`);
  }
  if (type === 'percentiles') {
    const ps = percents && percents.length > 0 ? percents : DEFAULT_PERCENTS;
    return { percentiles: { field, percents: ps } };
  }
  return { [type]: { field } };
}

export function buildMetricsRequest(query: QuarryQuery, ctx: QueryContext): QuarrySearchRequest {
  const interpolateText = ctx.interpolateText ?? identity;
  const metric = metricAggregation(
    query.metricType ?? 'count',
    query.metricField ? interpolateText(query.metricField) : undefined,
    query.percents
  );
  const histogram: Record<string, unknown> = { date_histogram: dateHistogram(ctx) };
  if (metric) {
    histogram.aggs = { [AGG.metric]: metric };
  }
  const groupBy = query.groupBy ? interpolateText(query.groupBy).trim() : '';
  // Terms outside the histogram: the top values over the whole range, each with a full series.
  const aggs = groupBy
    ? {
        [AGG.group]: {
          terms: { field: groupBy, size: clampHits(query.groupByLimit, DEFAULT_GROUP_BY_LIMIT) },
          aggs: { [AGG.histogram]: histogram },
        },
      }
    : { [AGG.histogram]: histogram };
  return {
    query: buildQueryString(query.query, ctx),
    ...toSearchWindow(ctx.range),
    max_hits: 0,
    aggs,
  };
}

/** Log volume: counts per time bucket, split by log level when `withLevels`. */
export function buildLogsVolumeRequest(query: QuarryQuery, ctx: QueryContext, withLevels = true): QuarrySearchRequest {
  const histogram: Record<string, unknown> = { date_histogram: dateHistogram(ctx) };
  if (withLevels) {
    histogram.aggs = { [AGG.levels]: { terms: { field: ctx.settings.logLevelField, size: LOGS_VOLUME_LEVELS } } };
  }
  return {
    query: buildQueryString(query.query, ctx),
    ...toSearchWindow(ctx.range),
    max_hits: 0,
    aggs: { [AGG.histogram]: histogram },
  };
}

/** The most frequent values of a field (template variables, ad hoc filter values). */
export function buildTermsRequest(field: string, size: number, ctx: QueryContext, userQuery?: string): QuarrySearchRequest {
  return {
    query: buildQueryString(userQuery, ctx),
    ...toSearchWindow(ctx.range),
    max_hits: 0,
    aggs: { [AGG.values]: { terms: { field, size: clampHits(size, 100) } } },
  };
}

/**
 * Log lines next to a row, by `search_after` on the time field (epoch nanoseconds).
 * Quarry's native hits carry no per-hit cursor, so the cursor is the row's own timestamp
 * without a tiebreaker: Backward asks for `ts <= row` newest first (the row itself and its
 * same-timestamp siblings included; the caller drops the row), Forward for `ts > row`
 * oldest first. Siblings with the same timestamp thus appear once, on the Backward side.
 */
export function buildContextRequest(
  rowTimeNs: bigint,
  direction: LogRowContextQueryDirection,
  limit: number,
  userQuery: string,
  ctx: Pick<QueryContext, 'settings'>
): QuarrySearchRequest {
  const backward = direction === LogRowContextQueryDirection.Backward;
  return {
    query: userQuery,
    // One more than asked on the Backward side: it includes the row itself.
    max_hits: clampHits(backward ? limit + 1 : limit, DEFAULT_LOGS_LIMIT),
    sort_by: backward ? `-${ctx.settings.timeField}` : ctx.settings.timeField,
    search_after: [backward ? rowTimeNs + BigInt(1) : rowTimeNs],
  };
}

/**
 * JSON body of a search request. Bigints (nanosecond cursors) are written as plain JSON
 * integers: Quarry reads them as i64, and a JavaScript number would round them.
 */
export function serializeSearchRequest(request: QuarrySearchRequest): string {
  const marker = '__quarry_bigint__';
  const json = JSON.stringify(request, (_key, value) =>
    typeof value === 'bigint' ? `${marker}${value.toString()}` : value
  );
  return json.replace(new RegExp(`"${marker}(-?\\d+)"`, 'g'), '$1');
}
