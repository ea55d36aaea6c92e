import { DataFrameType, FieldType, LogsVolumeType } from '@grafana/data';

import {
  extractSearchWords,
  fieldCapsToFields,
  fieldsFromDocuments,
  hitsToLogsFrame,
  logsVolumeMeta,
  logsVolumeToFrames,
  mergeFieldLists,
  metricsResponseToFrames,
  parseTimestampNs,
  termsToValues,
} from '../../src/responseParser';
import { QuarrySearchResponse, resolveSettings } from '../../src/types';

const settings = resolveSettings({ index: 'logs', timeField: 'timestamp' });

function response(partial: Partial<QuarrySearchResponse>): QuarrySearchResponse {
  return { num_hits: 0, hits: [], elapsed_time_micros: 1, errors: [], ...partial };
}

const values = (frame: { fields: Array<{ name: string; values: unknown[] }> }, name: string) =>
  frame.fields.find((f) => f.name === name)!.values;

describe('parseTimestampNs', () => {
  it('keeps sub-millisecond digits of RFC 3339 strings', () => {
    expect(parseTimestampNs('2026-01-01T00:00:09.133Z')).toBe(BigInt('1767225609133000000'));
    expect(parseTimestampNs('2026-01-01T00:00:09.123456789Z')).toBe(BigInt('1767225609123456789'));
    expect(parseTimestampNs('2026-01-01T01:00:09+01:00')).toBe(BigInt('1767225609000000000'));
  });

  it('tells Unix seconds, milliseconds, microseconds and nanoseconds apart by size', () => {
    expect(parseTimestampNs(1767225609)).toBe(BigInt('1767225609000000000'));
    expect(parseTimestampNs(1767225609.5)).toBe(BigInt('1767225609500000000'));
    expect(parseTimestampNs(1767225609133)).toBe(BigInt('1767225609133000000'));
    expect(parseTimestampNs(1767225609133456)).toBe(BigInt('1767225609133456000'));
    expect(parseTimestampNs('1767225609')).toBe(BigInt('1767225609000000000'));
  });

  it('returns undefined for missing or unparseable values', () => {
    expect(parseTimestampNs(undefined)).toBeUndefined();
    expect(parseTimestampNs('yesterday')).toBeUndefined();
  });
});

describe('hitsToLogsFrame', () => {
  const hits = [
    {
      timestamp: '2026-01-01T00:00:09.133Z',
      severity_text: 'ERROR',
      service_name: 'db',
      body: 'connection reset',
      attributes: { duration_ms: 28.5, path: '/x/1' },
    },
    { timestamp: '2026-01-01T00:00:08.000Z', service_name: 'api', message: 'no body field' },
    { timestamp: '2026-01-01T00:00:08.000Z', service_name: 'api', message: 'no body field' },
  ];
  const frame = hitsToLogsFrame(response({ num_hits: 42, hits }), settings, 'A', 'body:reset AND "conn reset"');

  it('is a logs frame with time, line, level, id and labels', () => {
    expect(frame.refId).toBe('A');
    expect(frame.length).toBe(3);
    expect(frame.meta?.type).toBe(DataFrameType.LogLines);
    expect(frame.meta?.preferredVisualisationType).toBe('logs');
    expect(frame.meta?.custom).toEqual({ total: 42 });
    expect(frame.meta?.searchWords).toEqual(['conn reset']);
    expect(frame.fields.map((f) => [f.name, f.type])).toEqual([
      ['timestamp', FieldType.time],
      ['body', FieldType.string],
      ['severity', FieldType.string],
      ['id', FieldType.string],
      ['labels', FieldType.other],
      ['tsNs', FieldType.string],
    ]);
    expect(values(frame, 'timestamp')).toEqual([1767225609133, 1767225608000, 1767225608000]);
    expect(values(frame, 'tsNs')[0]).toBe('1767225609133000000');
    expect(values(frame, 'severity')).toEqual(['ERROR', '', '']);
  });

  it('uses the message field as the line, or the whole document without it', () => {
    expect(values(frame, 'body')[0]).toBe('connection reset');
    expect(JSON.parse(values(frame, 'body')[1] as string)).toEqual(hits[1]);
  });

  it('flattens other fields into labels, as strings', () => {
    expect(values(frame, 'labels')[0]).toEqual({
      service_name: 'db',
      'attributes.duration_ms': '28.5',
      'attributes.path': '/x/1',
    });
  });

  it('gives identical documents distinct ids', () => {
    const ids = values(frame, 'id') as string[];
    expect(new Set(ids).size).toBe(3);
    expect(ids[2]).toBe(`${ids[1]}#1`);
  });

  it('honours a configured level field and reports split errors as a notice', () => {
    const custom = resolveSettings({ timeField: 'timestamp', logLevelField: 'service_name' });
    const f = hitsToLogsFrame(response({ hits, errors: ['split x: timed out'] }), custom, 'B');
    expect(values(f, 'severity')).toEqual(['db', 'api', 'api']);
    expect(f.meta?.notices?.[0].text).toMatch(/timed out/);
  });
});

describe('metricsResponseToFrames', () => {
  const histogram = (counts: number[], avg?: Array<number | null>) => ({
    buckets: counts.map((doc_count, i) => ({
      key: 1767225600000 + i * 60_000,
      key_as_string: 'ignored',
      doc_count,
      ...(avg ? { metric: { value: avg[i] } } : {}),
    })),
  });

  it('makes one count series from bucket doc counts', () => {
    const frames = metricsResponseToFrames(response({ aggregations: { histogram: histogram([3, 0, 5]) } }), { refId: 'A' }, 'A');
    expect(frames).toHaveLength(1);
    expect(values(frames[0], 'Time')).toEqual([1767225600000, 1767225660000, 1767225720000]);
    expect(values(frames[0], 'count')).toEqual([3, 0, 5]);
    expect(frames[0].meta?.type).toBe(DataFrameType.TimeSeriesMulti);
  });

  it('makes one series per group-by term, labelled with the term', () => {
    const aggregations = {
      group: {
        buckets: [
          { key: 'api', doc_count: 7, histogram: histogram([4, 3], [10, null]) },
          { key: 'db', doc_count: 2, histogram: histogram([2, 0], [1.5, null]) },
        ],
      },
    };
    const query = { refId: 'A', metricType: 'avg' as const, metricField: 'attributes.duration_ms', groupBy: 'service_name' };
    const frames = metricsResponseToFrames(response({ aggregations }), query, 'A', 'service_name');
    expect(frames.map((f) => f.name)).toEqual(['api', 'db']);
    expect(frames[0].fields[1].name).toBe('avg(attributes.duration_ms)');
    expect(frames[0].fields[1].labels).toEqual({ service_name: 'api' });
    expect(values(frames[0], 'avg(attributes.duration_ms)')).toEqual([10, null]);
    expect(values(frames[1], 'avg(attributes.duration_ms)')).toEqual([1.5, null]);
  });

  it('makes one series per percent, matching Quarry\'s "95.0" keys', () => {
    const aggregations = {
      histogram: {
        buckets: [{ key: 1, doc_count: 2, metric: { values: { '50.0': 1.5, '95.0': 2.9 } } }],
      },
    };
    const query = { refId: 'A', metricType: 'percentiles' as const, metricField: 'd', percents: [50, 95] };
    const frames = metricsResponseToFrames(response({ aggregations }), query, 'A');
    expect(frames.map((f) => f.fields[1].config.displayNameFromDS)).toEqual(['percentiles(d) p50', 'percentiles(d) p95']);
    expect(frames.map((f) => f.fields[1].values[0])).toEqual([1.5, 2.9]);
  });
});

describe('logsVolumeToFrames', () => {
  const meta = logsVolumeMeta({ fromMs: 1, toMs: 2 }, 'Quarry', { refId: 'A' });

  it('makes one series per level and counts level-less documents as unknown', () => {
    const aggregations = {
      histogram: {
        buckets: [
          { key: 1000, doc_count: 5, levels: { buckets: [{ key: 'INFO', doc_count: 3 }, { key: 'ERROR', doc_count: 1 }] } },
          { key: 2000, doc_count: 2, levels: { buckets: [{ key: 'ERROR', doc_count: 2 }] } },
        ],
      },
    };
    const frames = logsVolumeToFrames(response({ aggregations }), 'log-volume-A', meta);
    const byLevel = Object.fromEntries(frames.map((f) => [f.name, values(f, 'Value')]));
    expect(byLevel).toEqual({ INFO: [3, 0], ERROR: [1, 2], unknown: [1, 0] });
    expect(frames[0].meta?.custom?.logsVolumeType).toBe(LogsVolumeType.FullRange);
    expect(frames[0].meta?.custom?.absoluteRange).toEqual({ from: 1, to: 2 });
    expect(frames[0].fields[1].config.displayNameFromDS).toBe('INFO');
  });

  it('makes a single series from a plain histogram', () => {
    const aggregations = { histogram: { buckets: [{ key: 1000, doc_count: 4 }] } };
    const frames = logsVolumeToFrames(response({ aggregations }), 'v', meta);
    expect(frames.map((f) => [f.name, values(f, 'Value')])).toEqual([['logs', [4]]]);
  });
});

describe('fields and values', () => {
  it('reads terms keys, preferring key_as_string', () => {
    const aggregations = { values: { buckets: [{ key: 'api', doc_count: 3 }, { key: 200, key_as_string: '200', doc_count: 1 }] } };
    expect(termsToValues(response({ aggregations }))).toEqual([
      { text: 'api', value: 'api' },
      { text: '200', value: '200' },
    ]);
    expect(termsToValues(response({}))).toEqual([]);
  });

  it('flattens _field_caps, skipping metadata fields', () => {
    const fields = fieldCapsToFields({
      fields: {
        body: { text: { type: 'text', searchable: true, aggregatable: false } },
        _id: { _id: { type: '_id', searchable: true, aggregatable: false } },
        'attributes.duration_ms': { double: { type: 'double', searchable: true, aggregatable: true } },
      },
    });
    expect(fields).toEqual([
      { name: 'attributes.duration_ms', type: 'double', searchable: true, aggregatable: true },
      { name: 'body', type: 'text', searchable: true, aggregatable: false },
    ]);
  });

  it('merges field lists and adds dynamic fields seen in documents', () => {
    const a = [{ name: 'x', type: 'keyword', searchable: true, aggregatable: false }];
    const b = [{ name: 'x', type: 'keyword', searchable: true, aggregatable: true }];
    expect(mergeFieldLists([a, b])).toEqual(b);
    const dynamic = fieldsFromDocuments([{ x: 'known', host: 'h1', attributes: { code: 500, tags: ['a'] } }], a);
    expect(dynamic.map((f) => [f.name, f.type])).toEqual([
      ['host', 'dynamic'],
      ['attributes.code', 'dynamic number'],
    ]);
  });

  it('extracts free-text words and phrases for highlighting, not field filters', () => {
    expect(extractSearchWords('timeout AND service_name:"api" NOT "connection reset" -err*')).toEqual([
      'timeout',
      'connection reset',
      'err',
    ]);
  });
});
