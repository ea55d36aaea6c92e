import { LogRowContextQueryDirection } from '@grafana/data';

import {
  adHocFilterToClause,
  andClauses,
  buildContextRequest,
  buildLogsRequest,
  buildLogsVolumeRequest,
  buildMetricsRequest,
  buildQueryString,
  buildTermsRequest,
  escapeFieldName,
  fixedInterval,
  quoteValue,
  serializeSearchRequest,
  toSearchWindow,
  QueryContext,
} from '../../src/queryBuilder';
import { resolveSettings } from '../../src/types';

const settings = resolveSettings({ index: 'logs', timeField: 'timestamp' });
// 2026-01-01T00:00:00.250Z .. 2026-01-01T01:00:00.750Z
const range = { fromMs: 1767225600250, toMs: 1767229200750 };
const ctx: QueryContext = { settings, range, intervalMs: 60_000 };

describe('query-string escaping', () => {
  it('quotes values, escaping only backslash and double quote', () => {
    expect(quoteValue('plain')).toBe('"plain"');
    expect(quoteValue('say "hi" C:\\dir (x) *')).toBe('"say \\"hi\\" C:\\\\dir (x) *"');
  });

  it('escapes field names that contain query syntax, but not dots', () => {
    expect(escapeFieldName('attributes.http.status_code')).toBe('attributes.http.status_code');
    expect(escapeFieldName('weird name:(x)')).toBe('weird\\ name\\:\\(x\\)');
  });
});

describe('ad hoc filters', () => {
  it('turns = and != into quoted term clauses', () => {
    expect(adHocFilterToClause({ key: 'service_name', operator: '=', value: 'api "v2"' })).toBe('service_name:"api \\"v2\\""');
    expect(adHocFilterToClause({ key: 'service_name', operator: '!=', value: 'db' })).toBe('NOT service_name:"db"');
  });

  it('supports one-of, ranges and wildcard patterns', () => {
    expect(adHocFilterToClause({ key: 's', operator: '=|', value: '', values: ['a', 'b'] })).toBe('(s:"a" OR s:"b")');
    expect(adHocFilterToClause({ key: 's', operator: '!=|', value: '', values: ['a'] })).toBe('NOT s:"a"');
    expect(adHocFilterToClause({ key: 'attributes.duration_ms', operator: '>', value: '10.5' })).toBe('attributes.duration_ms:>10.5');
    expect(adHocFilterToClause({ key: 'body', operator: '=~', value: 'conn ect*' })).toBe('body:conn\\ ect*');
    expect(adHocFilterToClause({ key: 'body', operator: '!~', value: 'tim?out' })).toBe('NOT body:tim?out');
  });

  it('rejects operators Quarry cannot express', () => {
    expect(() => adHocFilterToClause({ key: 'a', operator: '<>', value: 'b' })).toThrow(/not supported/);
  });
});

describe('combining clauses', () => {
  it('drops empty and match-all clauses and parenthesises the rest', () => {
    expect(andClauses(['', '  ', undefined, '*'])).toBe('');
    expect(andClauses(['a OR b'])).toBe('a OR b');
    expect(andClauses(['a OR b', 'NOT c:"d"'])).toBe('(a OR b) AND (NOT c:"d")');
  });

  it('interpolates variables in the user query before adding filters', () => {
    const query = buildQueryString('service_name:$svc', {
      ...ctx,
      interpolateQuery: (text) => text.replace('$svc', '("api" OR "db")'),
      adhocFilters: [{ key: 'severity_text', operator: '=', value: 'ERROR' }],
    });
    expect(query).toBe('(service_name:("api" OR "db")) AND (severity_text:"ERROR")');
  });
});

describe('time', () => {
  it('rounds Grafana ms range outward to Quarry [start, end) seconds', () => {
    expect(toSearchWindow(range)).toEqual({ start_timestamp: 1767225600, end_timestamp: 1767229201 });
    // An inclusive `to` on a whole second still includes that second.
    expect(toSearchWindow({ fromMs: 1000, toMs: 2000 })).toEqual({ start_timestamp: 1, end_timestamp: 3 });
  });

  it('uses Grafana interval as fixed_interval, never under one second', () => {
    expect(fixedInterval(undefined)).toBe('1s');
    expect(fixedInterval(20)).toBe('1s');
    expect(fixedInterval(60_000)).toBe('60s');
    expect(fixedInterval(1500)).toBe('1500ms');
  });
});

describe('requests', () => {
  it('builds a logs request: newest first, limit, window', () => {
    expect(buildLogsRequest({ refId: 'A', query: 'body:failed', limit: 25 }, ctx)).toEqual({
      query: 'body:failed',
      start_timestamp: 1767225600,
      end_timestamp: 1767229201,
      max_hits: 25,
      sort_by: '-timestamp',
    });
    expect(buildLogsRequest({ refId: 'A', limit: 50_000 }, ctx).max_hits).toBe(10_000);
    expect(buildLogsRequest({ refId: 'A' }, ctx).max_hits).toBe(100);
  });

  const histogram = {
    field: 'timestamp',
    fixed_interval: '60s',
    min_doc_count: 0,
    extended_bounds: { min: range.fromMs, max: range.toMs },
  };

  it('builds a count histogram without sub-aggregation', () => {
    const request = buildMetricsRequest({ refId: 'A', queryMode: 'metrics', metricType: 'count' }, ctx);
    expect(request).toEqual({
      query: '',
      start_timestamp: 1767225600,
      end_timestamp: 1767229201,
      max_hits: 0,
      aggs: { histogram: { date_histogram: histogram } },
    });
  });

  it('nests the histogram under terms when grouping, with the metric inside', () => {
    const request = buildMetricsRequest(
      { refId: 'A', metricType: 'avg', metricField: '$f', groupBy: 'service_name', groupByLimit: 5 },
      { ...ctx, interpolateText: (text) => text.replace('$f', 'attributes.duration_ms') }
    );
    expect(request.aggs).toEqual({
      group: {
        terms: { field: 'service_name', size: 5 },
        aggs: {
          histogram: { date_histogram: histogram, aggs: { metric: { avg: { field: 'attributes.duration_ms' } } } },
        },
      },
    });
  });

  it('builds percentiles, cardinality and rejects field-less metrics', () => {
    const p = buildMetricsRequest({ refId: 'A', metricType: 'percentiles', metricField: 'd', percents: [90] }, ctx);
    expect((p.aggs as any).histogram.aggs.metric).toEqual({ percentiles: { field: 'd', percents: [90] } });
    const c = buildMetricsRequest({ refId: 'A', metricType: 'cardinality', metricField: 'host' }, ctx);
    expect((c.aggs as any).histogram.aggs.metric).toEqual({ cardinality: { field: 'host' } });
    expect(() => buildMetricsRequest({ refId: 'A', metricType: 'sum' }, ctx)).toThrow(/needs a field/);
  });

  it('builds the log volume histogram split by level, or a plain one', () => {
    const withLevels = buildLogsVolumeRequest({ refId: 'A', query: 'x' }, ctx);
    expect(withLevels.aggs).toEqual({
      histogram: { date_histogram: histogram, aggs: { levels: { terms: { field: 'severity_text', size: 20 } } } },
    });
    expect(buildLogsVolumeRequest({ refId: 'A' }, ctx, false).aggs).toEqual({ histogram: { date_histogram: histogram } });
  });

  it('builds a terms request for variable values', () => {
    expect(buildTermsRequest('service_name', 50, ctx, 'severity_text:ERROR')).toEqual({
      query: 'severity_text:ERROR',
      start_timestamp: 1767225600,
      end_timestamp: 1767229201,
      max_hits: 0,
      aggs: { values: { terms: { field: 'service_name', size: 50 } } },
    });
  });

  it('builds context requests around a nanosecond timestamp', () => {
    const ts = BigInt('1767225608119000123');
    const backward = buildContextRequest(ts, LogRowContextQueryDirection.Backward, 10, '', { settings });
    expect(backward).toEqual({ query: '', max_hits: 11, sort_by: '-timestamp', search_after: [BigInt('1767225608119000124')] });
    const forward = buildContextRequest(ts, LogRowContextQueryDirection.Forward, 10, '', { settings });
    expect(forward).toEqual({ query: '', max_hits: 10, sort_by: 'timestamp', search_after: [ts] });
  });

  it('serialises nanosecond cursors as exact JSON integers', () => {
    const body = serializeSearchRequest({ query: 'a "b"', max_hits: 1, search_after: [BigInt('1767225608119000123'), 'x:0:1'] });
    expect(body).toBe('{"query":"a \\"b\\"","max_hits":1,"search_after":[1767225608119000123,"x:0:1"]}');
    // The number would have been rounded by JSON.stringify.
    expect(JSON.stringify(1767225608119000123)).not.toBe('1767225608119000123');
  });
});
