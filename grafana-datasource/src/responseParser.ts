/**
 * Pure conversions from Quarry responses to Grafana data frames.
 */
import {
  DataFrame,
  DataFrameType,
  FieldType,
  Labels,
  LogsVolumeCustomMetaData,
  LogsVolumeType,
  MetricFindValue,
  createDataFrame,
} from '@grafana/data';

import { AGG } from './queryBuilder';
import {
  AggregationResult,
  Bucket,
  DEFAULT_PERCENTS,
  FieldCapsResponse,
  FieldInfo,
  MetricType,
  QuarryQuery,
  QuarrySearchResponse,
  ResolvedSettings,
} from './types';

// ---------------------------------------------------------------- timestamps

const NS_PER_MS = BigInt(1_000_000);

/**
 * A document's timestamp as epoch nanoseconds. Quarry returns what was ingested: an
 * RFC 3339 string (sub-millisecond digits are kept, which `Date.parse` would drop) or a
 * Unix number in seconds, milliseconds, microseconds or nanoseconds (told apart by size).
 */
export function parseTimestampNs(value: unknown): bigint | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) {
    const magnitude = Math.abs(value);
    if (magnitude < 1e11) {
      return BigInt(Math.round(value * 1e3)) * NS_PER_MS; // seconds (ms precision)
    }
    if (magnitude < 1e14) {
      return BigInt(Math.round(value * 1e3)) * BigInt(1000); // milliseconds
    }
    if (magnitude < 1e17) {
      return BigInt(Math.round(value)) * BigInt(1000); // microseconds
    }
    return BigInt(Math.round(value)); // nanoseconds (already past float precision)
  }
  if (typeof value !== 'string' || value.trim() === '') {
    return undefined;
  }
  if (/^-?\d+$/.test(value.trim())) {
    return parseTimestampNs(Number(value));
  }
  // Split off the fraction: Date.parse keeps milliseconds only.
  const match = value.match(/^([^.]*:\d{2})(?:\.(\d+))?(.*)$/);
  if (!match) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : BigInt(ms) * NS_PER_MS;
  }
  const [, head, fraction = '', zone] = match;
  const wholeSecondsMs = Date.parse(`${head}${zone}`);
  if (Number.isNaN(wholeSecondsMs)) {
    return undefined;
  }
  const fractionNs = BigInt((fraction + '000000000').slice(0, 9));
  return BigInt(wholeSecondsMs) * NS_PER_MS + fractionNs;
}

export function nsToMs(ns: bigint): number {
  return Number(ns / NS_PER_MS);
}

// ---------------------------------------------------------------- documents

/** Nested objects as dotted paths (`attributes.http.status`), as Quarry's queries name them. */
export function flattenDocument(doc: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}) {
  for (const [key, value] of Object.entries(doc)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      flattenDocument(value as Record<string, unknown>, path, out);
    } else {
      out[path] = value;
    }
  }
  return out;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** FNV-1a, 64 bits: a stable row id from content, since Quarry's native hits have no id. */
export function contentHash(text: string): string {
  let hash = BigInt('0xcbf29ce484222325');
  const prime = BigInt('0x100000001b3');
  const mask = BigInt('0xffffffffffffffff');
  for (let i = 0; i < text.length; i++) {
    hash = ((hash ^ BigInt(text.charCodeAt(i))) * prime) & mask;
  }
  return hash.toString(16).padStart(16, '0');
}

/** A hit's time, read from the (possibly nested) time field. */
export function docTimeNs(doc: Record<string, unknown>, settings: Pick<ResolvedSettings, 'timeField'>): bigint | undefined {
  return parseTimestampNs(flattenDocument(doc)[settings.timeField]);
}

export function logRowId(timeNs: bigint | undefined, doc: Record<string, unknown>): string {
  return `${timeNs ?? ''}_${contentHash(JSON.stringify(doc))}`;
}

// ---------------------------------------------------------------- logs

/** Names of the logs frame's fields (Grafana's data plane "log-lines" shape, plus tsNs). */
export const LOG_FIELDS = {
  time: 'timestamp',
  body: 'body',
  severity: 'severity',
  id: 'id',
  labels: 'labels',
  timeNs: 'tsNs',
} as const;

/**
 * Hits (newest first) as one logs frame: time, line, level, id and the remaining fields
 * as labels, so Grafana shows them in log details and can filter by them.
 */
export function hitsToLogsFrame(
  response: QuarrySearchResponse,
  settings: ResolvedSettings,
  refId: string,
  query?: string
): DataFrame {
  const times: number[] = [];
  const timesNs: string[] = [];
  const bodies: string[] = [];
  const levels: string[] = [];
  const ids: string[] = [];
  const labels: Labels[] = [];
  const seenIds = new Map<string, number>();
  for (const doc of response.hits) {
    const flat = flattenDocument(doc);
    const timeNs = parseTimestampNs(flat[settings.timeField]);
    let id = logRowId(timeNs, doc);
    // Identical documents get distinct ids: Grafana keys rows by id.
    const dup = seenIds.get(id) ?? 0;
    seenIds.set(id, dup + 1);
    if (dup > 0) {
      id = `${id}#${dup}`;
    }
    const rowLabels: Labels = {};
    for (const [path, value] of Object.entries(flat)) {
      if (path !== settings.timeField && path !== settings.logMessageField && path !== settings.logLevelField) {
        rowLabels[path] = asText(value);
      }
    }
    times.push(timeNs === undefined ? 0 : nsToMs(timeNs));
    timesNs.push(timeNs === undefined ? '' : timeNs.toString());
    bodies.push(settings.logMessageField in flat ? asText(flat[settings.logMessageField]) : JSON.stringify(doc));
    levels.push(asText(flat[settings.logLevelField]));
    ids.push(id);
    labels.push(rowLabels);
  }
  return createDataFrame({
    refId,
    name: refId,
    meta: {
      type: DataFrameType.LogLines,
      preferredVisualisationType: 'logs',
      // Lets Grafana tell the user how many lines matched beyond those shown.
      custom: { total: response.num_hits },
      searchWords: query ? extractSearchWords(query) : undefined,
      notices: response.errors.length
        ? [{ severity: 'warning', text: `Quarry could not search some splits: ${response.errors.join('; ')}` }]
        : undefined,
    },
    fields: [
      { name: LOG_FIELDS.time, type: FieldType.time, values: times },
      { name: LOG_FIELDS.body, type: FieldType.string, values: bodies },
      { name: LOG_FIELDS.severity, type: FieldType.string, values: levels },
      { name: LOG_FIELDS.id, type: FieldType.string, values: ids },
      { name: LOG_FIELDS.labels, type: FieldType.other, values: labels },
      { name: LOG_FIELDS.timeNs, type: FieldType.string, values: timesNs, config: { custom: { hidden: true } } },
    ],
  });
}

/** Quoted phrases and bare unqualified words of a query, for highlighting in log lines. */
export function extractSearchWords(query: string): string[] {
  const words: string[] = [];
  for (const match of query.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const phrase = match[1];
    const bare = match[2];
    if (phrase !== undefined) {
      // A quoted value after `field:` is a filter on that field, not text in the line.
      const before = query.slice(0, match.index);
      if (!before.endsWith(':')) {
        words.push(phrase.replace(/\\(.)/g, '$1'));
      }
    } else if (bare && !bare.includes(':') && !/^(AND|OR|NOT|&&|\|\||[()+-]+)$/.test(bare)) {
      const word = bare.replace(/^[+\-(]+|[)]+$/g, '').replace(/[*?]/g, '');
      if (word) {
        words.push(word);
      }
    }
  }
  return words;
}

// ---------------------------------------------------------------- aggregations

function buckets(agg: unknown): Bucket[] {
  const result = agg as AggregationResult | undefined;
  return Array.isArray(result?.buckets) ? result!.buckets! : [];
}

function bucketKey(bucket: Bucket): string {
  return bucket.key_as_string ?? String(bucket.key);
}

/** Percentile results are keyed `"95.0"`; match by number, not by text. */
function percentileValue(values: Record<string, number | null> | undefined, percent: number): number | null {
  if (!values) {
    return null;
  }
  for (const [key, value] of Object.entries(values)) {
    if (Number(key) === percent) {
      return value ?? null;
    }
  }
  return null;
}

interface SeriesSpec {
  /** Legend suffix, e.g. `p95`; empty for single-value metrics. */
  suffix: string;
  value: (bucket: Bucket) => number | null;
}

function seriesSpecs(metricType: MetricType, percents: number[] | undefined): SeriesSpec[] {
  if (metricType === 'count') {
    return [{ suffix: '', value: (b) => b.doc_count }];
  }
  if (metricType === 'percentiles') {
    const ps = percents && percents.length > 0 ? percents : DEFAULT_PERCENTS;
    return ps.map((p) => ({
      suffix: `p${p}`,
      value: (b) => percentileValue((b[AGG.metric] as AggregationResult | undefined)?.values, p),
    }));
  }
  return [{ suffix: '', value: (b) => (b[AGG.metric] as AggregationResult | undefined)?.value ?? null }];
}

export function metricLabel(query: QuarryQuery): string {
  const type = query.metricType ?? 'count';
  return type === 'count' ? 'count' : `${type}(${query.metricField ?? ''})`;
}

function timeSeriesFrame(
  refId: string,
  histogramBuckets: Bucket[],
  spec: SeriesSpec,
  valueName: string,
  displayName: string,
  labels?: Labels
): DataFrame {
  return createDataFrame({
    refId,
    name: displayName,
    meta: { type: DataFrameType.TimeSeriesMulti },
    fields: [
      { name: 'Time', type: FieldType.time, values: histogramBuckets.map((b) => Number(b.key)) },
      {
        name: valueName,
        type: FieldType.number,
        values: histogramBuckets.map(spec.value),
        labels,
        config: { displayNameFromDS: displayName },
      },
    ],
  });
}

/**
 * A metrics response as time series: one frame per series, i.e. per group-by value (in
 * Quarry's order, most documents first) and, for percentiles, per percent.
 */
export function metricsResponseToFrames(
  response: QuarrySearchResponse,
  query: QuarryQuery,
  refId: string,
  resolvedGroupBy?: string
): DataFrame[] {
  const specs = seriesSpecs(query.metricType ?? 'count', query.percents);
  const label = metricLabel(query);
  const aggs = response.aggregations ?? {};
  const withSuffix = (base: string, suffix: string) => (suffix ? `${base} ${suffix}` : base);
  if (resolvedGroupBy) {
    return buckets(aggs[AGG.group]).flatMap((group) => {
      const term = bucketKey(group);
      const series = buckets(group[AGG.histogram]);
      return specs.map((spec) =>
        timeSeriesFrame(refId, series, spec, withSuffix(label, spec.suffix), withSuffix(term, spec.suffix), {
          [resolvedGroupBy]: term,
        })
      );
    });
  }
  const series = buckets(aggs[AGG.histogram]);
  return specs.map((spec) =>
    timeSeriesFrame(refId, series, spec, withSuffix(label, spec.suffix), withSuffix(label, spec.suffix))
  );
}

/** Level name of documents that have no level field. */
export const UNKNOWN_LEVEL = 'unknown';

/**
 * Log volume frames, one per level, as Grafana's logs-volume panel expects them
 * (display name = level, `logsVolumeType` and the range in `meta.custom`).
 */
export function logsVolumeToFrames(
  response: QuarrySearchResponse,
  refId: string,
  custom: LogsVolumeCustomMetaData
): DataFrame[] {
  const histogram = buckets(response.aggregations?.[AGG.histogram]);
  const times = histogram.map((b) => Number(b.key));
  const counts = new Map<string, number[]>();
  const series = (level: string) => {
    let values = counts.get(level);
    if (!values) {
      values = new Array(histogram.length).fill(0);
      counts.set(level, values);
    }
    return values;
  };
  const split = histogram.some((b) => b[AGG.levels] !== undefined);
  histogram.forEach((bucket, i) => {
    if (!split) {
      series('logs')[i] = bucket.doc_count;
      return;
    }
    let counted = 0;
    for (const levelBucket of buckets(bucket[AGG.levels])) {
      series(bucketKey(levelBucket))[i] += levelBucket.doc_count;
      counted += levelBucket.doc_count;
    }
    // Documents without a level, or beyond the top levels, still count in the volume.
    if (bucket.doc_count > counted) {
      series(UNKNOWN_LEVEL)[i] += bucket.doc_count - counted;
    }
  });
  return [...counts.entries()].map(([level, values]) =>
    createDataFrame({
      refId,
      name: level,
      meta: { type: DataFrameType.TimeSeriesMulti, custom },
      fields: [
        { name: 'Time', type: FieldType.time, values: times },
        {
          name: 'Value',
          type: FieldType.number,
          values,
          labels: { level },
          config: { displayNameFromDS: level },
        },
      ],
    })
  );
}

export function logsVolumeMeta(
  range: { fromMs: number; toMs: number },
  datasourceName: string,
  sourceQuery: QuarryQuery
): LogsVolumeCustomMetaData {
  return {
    absoluteRange: { from: range.fromMs, to: range.toMs },
    logsVolumeType: LogsVolumeType.FullRange,
    datasourceName,
    sourceQuery,
  };
}

/** Keys of a terms aggregation, most frequent first. */
export function termsToValues(response: QuarrySearchResponse, aggName: string = AGG.values): MetricFindValue[] {
  return buckets(response.aggregations?.[aggName]).map((b) => {
    const text = bucketKey(b);
    return { text, value: text };
  });
}

/** `_field_caps` as a flat, sorted field list. */
export function fieldCapsToFields(response: FieldCapsResponse): FieldInfo[] {
  return Object.entries(response.fields ?? {})
    .filter(([name]) => !name.startsWith('_'))
    .map(([name, byType]) => {
      const caps = Object.values(byType);
      return {
        name,
        type: caps[0]?.type ?? 'unknown',
        searchable: caps.some((c) => c.searchable !== false),
        aggregatable: caps.some((c) => c.aggregatable === true),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Field lists of several indexes as one; a field aggregatable in any of them stays so. */
export function mergeFieldLists(lists: FieldInfo[][]): FieldInfo[] {
  const byName = new Map<string, FieldInfo>();
  for (const field of lists.flat()) {
    const known = byName.get(field.name);
    byName.set(
      field.name,
      known
        ? { ...known, searchable: known.searchable || field.searchable, aggregatable: known.aggregatable || field.aggregatable }
        : field
    );
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Fields seen in sample documents but absent from `_field_caps`. Quarry's `_field_caps`
 * lists mapped fields and the paths inside fast json fields of recent splits; paths of
 * json fields that are not fast, and of documents not yet in a split, are only seen in
 * the documents themselves.
 */
export function fieldsFromDocuments(docs: Array<Record<string, unknown>>, known: FieldInfo[]): FieldInfo[] {
  const knownNames = new Set(known.map((f) => f.name));
  const found = new Map<string, FieldInfo>();
  for (const doc of docs) {
    for (const [path, value] of Object.entries(flattenDocument(doc))) {
      if (knownNames.has(path) || found.has(path) || value === null || Array.isArray(value)) {
        continue;
      }
      const type = typeof value === 'number' ? 'dynamic number' : typeof value === 'boolean' ? 'dynamic boolean' : 'dynamic';
      found.set(path, { name: path, type, searchable: true, aggregatable: true });
    }
  }
  return [...found.values()];
}
