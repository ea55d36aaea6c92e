/**
 * The datasource against a live Quarry node: `@grafana/runtime`'s fetch is real HTTP
 * (tests/support/runtimeMock.ts), the node is spawned from $QUARRY_BIN, and expectations
 * are computed here from the documents ingested.
 */
jest.mock('@grafana/runtime', () => require('../support/runtimeMock'));

import {
  DataFrame,
  DataQueryRequest,
  DataQueryResponse,
  LogRowContextQueryDirection,
  LogRowModel,
  SupplementaryQueryType,
  TimeRange,
  dateTime,
} from '@grafana/data';
import { lastValueFrom } from 'rxjs';

import { QuarryDatasource } from '../../src/datasource';
import { QuarryQuery } from '../../src/types';
import { makeDatasource } from '../support/datasourceFactory';
import { PROXY_AUTHORIZATION, QuarryNode, postJson, startQuarry } from '../support/quarryNode';
import { requests, setProxyHeaders, setTemplateVariables } from '../support/runtimeMock';

const QUARRY_BIN = process.env.QUARRY_BIN;
if (!QUARRY_BIN) {
  // Straight to stderr: Jest swallows console output of suites whose tests are all skipped.
  process.stderr.write(
    '\n*** SKIPPED: set QUARRY_BIN=/path/to/quarry to run the Grafana plugin integration test against a live Quarry node ***\n\n'
  );
}
const describeLive = QUARRY_BIN ? describe : describe.skip;

// ---------------------------------------------------------------- the data set

const T0 = Date.UTC(2026, 0, 1); // a whole hour, so hour buckets hold everything
const SERVICES = ['api', 'api', 'db', 'web', 'auth'];

interface Doc {
  i: number;
  ms: number;
  severity?: string;
  service: string;
  host: string;
  duration: number;
  body: string;
}

function severityOf(i: number): string | undefined {
  const r = i % 10;
  if (r < 6) {
    return 'INFO';
  }
  if (r < 8) {
    return 'WARN';
  }
  if (r === 8) {
    return 'ERROR';
  }
  // Every other DEBUG slot has no level at all: the log volume must still count it.
  return i % 20 === 19 ? undefined : 'DEBUG';
}

const DOCS: Doc[] = Array.from({ length: 200 }, (_, i) => {
  const severity = severityOf(i);
  return {
    i,
    // Doc 101 shares doc 100's timestamp: log context must handle the tie.
    ms: T0 + (i === 101 ? 100 : i) * 1500 + ((i === 101 ? 100 : i) % 3) * 7,
    severity,
    service: SERVICES[i % SERVICES.length],
    host: `h${i % 3}`,
    duration: ((i * 37) % 100) + 0.25,
    body: severity === 'ERROR' ? `request ${i} failed: connection reset by peer` : `request ${i} ok`,
  };
});

function toNdjson(docs: Doc[]): string {
  return docs
    .map((d) =>
      JSON.stringify({
        timestamp: new Date(d.ms).toISOString(),
        ...(d.severity ? { severity_text: d.severity } : {}),
        service_name: d.service,
        host: d.host,
        body: d.body,
        attributes: { duration_ms: d.duration },
      })
    )
    .join('\n');
}

const INDEX_CONFIG = {
  index_id: 'logs',
  doc_mapping: {
    mode: 'dynamic',
    field_mappings: [
      { name: 'timestamp', type: 'datetime', input_formats: ['rfc3339', 'unix_timestamp'], fast: true },
      { name: 'severity_text', type: 'text', tokenizer: 'raw', fast: true },
      { name: 'service_name', type: 'text', tokenizer: 'raw', fast: true },
      { name: 'body', type: 'text' },
      { name: 'attributes', type: 'object', field_mappings: [{ name: 'duration_ms', type: 'f64', fast: true }] },
    ],
    timestamp_field: 'timestamp',
  },
  search_settings: { default_search_fields: ['body'] },
};

const countBy = <K>(docs: Doc[], key: (d: Doc) => K) => {
  const counts = new Map<K, number>();
  docs.forEach((d) => counts.set(key(d), (counts.get(key(d)) ?? 0) + 1));
  return counts;
};

// ---------------------------------------------------------------- helpers

const RANGE: TimeRange = {
  from: dateTime(T0 - 5_000),
  to: dateTime(T0 + 400_000),
  raw: { from: 'test', to: 'test' },
};

function request(targets: QuarryQuery[], extra: Partial<DataQueryRequest<QuarryQuery>> = {}): DataQueryRequest<QuarryQuery> {
  return {
    requestId: 'it',
    interval: '1m',
    intervalMs: 60_000,
    range: RANGE,
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: 'dashboard',
    startTime: Date.now(),
    ...extra,
  };
}

async function run(ds: QuarryDatasource, targets: QuarryQuery[], extra: Partial<DataQueryRequest<QuarryQuery>> = {}) {
  const response: DataQueryResponse = await lastValueFrom(ds.query(request(targets, extra)));
  return response;
}

const field = (frame: DataFrame, name: string) => {
  const found = frame.fields.find((f) => f.name === name);
  if (!found) {
    throw new Error(`frame ${frame.name} has no field ${name}: ${frame.fields.map((f) => f.name)}`);
  }
  return found.values as any[];
};

const bodies = (frame: DataFrame) => field(frame, 'body') as string[];
const docIndex = (body: string) => Number(body.match(/^request (\d+)/)![1]);

// ---------------------------------------------------------------- the tests

describeLive('Quarry datasource against a live node', () => {
  let node: QuarryNode;
  let ds: QuarryDatasource;

  beforeAll(async () => {
    node = await startQuarry(QUARRY_BIN!);
    setProxyHeaders({ Authorization: PROXY_AUTHORIZATION });
    await postJson(`${node.baseUrl}/api/v1/indexes`, INDEX_CONFIG);
    const ingest = await postJson(`${node.baseUrl}/api/v1/logs/ingest?commit=force`, toNdjson(DOCS), 'application/x-ndjson');
    expect(ingest.num_ingested_docs).toBe(DOCS.length);
    // The proxy URL: in Grafana /api/datasources/proxy/uid/…, here the node itself.
    ds = makeDatasource(node.baseUrl, { index: 'logs', timeField: 'timestamp' });
  }, 60_000);

  afterAll(async () => {
    await node?.stop();
  });

  beforeEach(() => {
    requests.length = 0;
    setTemplateVariables({});
  });

  it('passes the health check and requests go to the live node', async () => {
    const result = await ds.testDatasource();
    expect(result).toEqual({ status: 'success', message: expect.stringContaining('1 index(es) match (logs)') });
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((r) => r.url.startsWith(`${node.baseUrl}/api/v1/`))).toBe(true);
    // `tests/grafana_plugin.rs` runs this suite against a node that serves HTTPS.
    if (process.env.QUARRY_TLS_CERT) {
      expect(node.baseUrl.startsWith('https://')).toBe(true);
    }
  });

  it('reports missing credentials in words when the proxy sends none', async () => {
    setProxyHeaders({});
    try {
      const result = await ds.testDatasource();
      expect(result.status).toBe('error');
      expect(result.message).toContain('(401)');
      expect(result.message).toContain('missing credentials');
    } finally {
      setProxyHeaders({ Authorization: PROXY_AUTHORIZATION });
    }
  });

  describe('logs mode', () => {
    it('returns matching log lines, newest first, with level and labels', async () => {
      const { data, errors } = await run(ds, [{ refId: 'A', queryMode: 'logs', query: 'severity_text:ERROR', limit: 1000 }]);
      expect(errors).toBeUndefined();
      expect(data).toHaveLength(1);
      const frame = data[0] as DataFrame;
      const errorDocs = DOCS.filter((d) => d.severity === 'ERROR');
      expect(frame.length).toBe(errorDocs.length);
      expect(frame.meta?.preferredVisualisationType).toBe('logs');
      expect(new Set(field(frame, 'severity'))).toEqual(new Set(['ERROR']));
      expect(bodies(frame)).toEqual(errorDocs.map((d) => d.body).reverse());
      expect(field(frame, 'timestamp')).toEqual(errorDocs.map((d) => d.ms).reverse());
      const labels = field(frame, 'labels')[0];
      const newest = errorDocs[errorDocs.length - 1];
      expect(labels).toEqual({ service_name: newest.service, host: newest.host, 'attributes.duration_ms': String(newest.duration) });
      expect(new Set(field(frame, 'id')).size).toBe(frame.length);
    });

    it('honours the limit', async () => {
      const { data } = await run(ds, [{ refId: 'A', queryMode: 'logs', limit: 10 }]);
      expect(bodies(data[0]).map(docIndex)).toEqual([199, 198, 197, 196, 195, 194, 193, 192, 191, 190]);
      expect(data[0].meta.custom.total).toBe(DOCS.length);
    });

    it('finds phrases in the default search field', async () => {
      const { data } = await run(ds, [{ refId: 'A', query: '"connection reset"', limit: 1000 }]);
      expect(data[0].length).toBe(DOCS.filter((d) => d.body.includes('connection reset')).length);
      expect(data[0].meta.searchWords).toEqual(['connection reset']);
    });

    it('applies multi-value template variables and ad hoc filters', async () => {
      setTemplateVariables({ svc: ['db', 'web'] });
      const { data, errors } = await run(ds, [{ refId: 'A', query: 'service_name:$svc', limit: 1000 }], {
        filters: [
          { key: 'severity_text', operator: '!=', value: 'INFO' },
          { key: 'attributes.duration_ms', operator: '>', value: '20' },
        ],
      });
      expect(errors).toBeUndefined();
      const expected = DOCS.filter((d) => ['db', 'web'].includes(d.service) && d.severity !== 'INFO' && d.duration > 20);
      expect(expected.length).toBeGreaterThan(5);
      expect(bodies(data[0]).map(docIndex).sort((a, b) => a - b)).toEqual(expected.map((d) => d.i));
    });

    it('reports a bad query as an error of its own refId', async () => {
      const { data, errors } = await run(ds, [
        { refId: 'A', query: 'service_name:(' },
        { refId: 'B', query: 'body:ok', limit: 1 },
      ]);
      expect(errors).toHaveLength(1);
      expect(errors![0].refId).toBe('A');
      expect(errors![0].message).toMatch(/^Quarry search failed \(400\): /);
      expect(data.map((f) => f.refId)).toEqual(['B']);
    });
  });

  describe('log volume', () => {
    it('histograms every document by level, level-less ones as unknown', async () => {
      const volume = ds.getSupplementaryRequest(SupplementaryQueryType.LogsVolume, request([{ refId: 'A', queryMode: 'logs' }]))!;
      const { data } = await run(ds, volume.targets, { intervalMs: 60_000 });
      const totals = Object.fromEntries(data.map((f: DataFrame) => [f.name, field(f, 'Value').reduce((a, b) => a + b, 0)]));
      const expected: Record<string, number> = {};
      DOCS.forEach((d) => (expected[d.severity ?? 'unknown'] = (expected[d.severity ?? 'unknown'] ?? 0) + 1));
      expect(totals).toEqual(expected);
      expect(expected.unknown).toBe(10);
      expect(data[0].meta.custom.logsVolumeType).toBe('FullRange');
      expect(data[0].refId).toBe('log-volume-A');
    });
  });

  describe('metrics mode', () => {
    const bucketOf = (ms: number, widthMs: number) => Math.floor(ms / widthMs) * widthMs;

    it('counts per minute, zero-filled, summing to the total', async () => {
      const { data, errors } = await run(ds, [{ refId: 'A', queryMode: 'metrics', metricType: 'count' }]);
      expect(errors).toBeUndefined();
      expect(data).toHaveLength(1);
      const times = field(data[0], 'Time');
      const counts = field(data[0], 'count');
      const expected = countBy(DOCS, (d) => bucketOf(d.ms, 60_000));
      times.forEach((t, i) => expect(counts[i]).toBe(expected.get(t) ?? 0));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(DOCS.length);
      // Extended bounds: buckets cover the whole range, including the empty minutes.
      expect(times[0]).toBe(bucketOf(T0 - 5_000, 60_000));
      expect(times[times.length - 1]).toBe(bucketOf(T0 + 400_000, 60_000));
    });

    it('counts grouped by level: one series per level', async () => {
      const { data } = await run(ds, [
        { refId: 'A', queryMode: 'metrics', metricType: 'count', groupBy: 'severity_text', groupByLimit: 10 },
      ]);
      const totals = Object.fromEntries(data.map((f: DataFrame) => [f.name, field(f, 'count').reduce((a, b) => a + b, 0)]));
      const expected = Object.fromEntries(countBy(DOCS.filter((d) => d.severity), (d) => d.severity!));
      expect(totals).toEqual(expected);
      expect(data[0].fields[1].labels).toEqual({ severity_text: 'INFO' });
    });

    it('averages a field per service and minute', async () => {
      const { data, errors } = await run(ds, [
        { refId: 'A', queryMode: 'metrics', metricType: 'avg', metricField: 'attributes.duration_ms', groupBy: 'service_name' },
      ]);
      expect(errors).toBeUndefined();
      expect(data.map((f: DataFrame) => f.name).sort()).toEqual(['api', 'auth', 'db', 'web']);
      for (const frame of data as DataFrame[]) {
        const times = field(frame, 'Time');
        const avgs = field(frame, 'avg(attributes.duration_ms)');
        times.forEach((t, i) => {
          const inBucket = DOCS.filter((d) => d.service === frame.name && bucketOf(d.ms, 60_000) === t);
          if (inBucket.length === 0) {
            expect(avgs[i]).toBeNull();
          } else {
            expect(avgs[i]).toBeCloseTo(inBucket.reduce((a, d) => a + d.duration, 0) / inBucket.length, 6);
          }
        });
      }
    });

    it('computes sum, min, max, cardinality and percentiles', async () => {
      const hour = { intervalMs: 3_600_000 };
      const one = async (q: Partial<QuarryQuery>) => {
        const { data, errors } = await run(ds, [{ refId: 'A', queryMode: 'metrics', ...q }], hour);
        expect(errors).toBeUndefined();
        // The hour bucket at T0 holds every document.
        const times = field(data[0], 'Time');
        return data.map((f: DataFrame) => f.fields[1].values[times.indexOf(T0)]);
      };
      const durations = DOCS.map((d) => d.duration).sort((a, b) => a - b);
      const f = 'attributes.duration_ms';
      expect((await one({ metricType: 'sum', metricField: f }))[0]).toBeCloseTo(durations.reduce((a, b) => a + b, 0), 6);
      expect(await one({ metricType: 'min', metricField: f })).toEqual([durations[0]]);
      expect(await one({ metricType: 'max', metricField: f })).toEqual([durations[durations.length - 1]]);
      expect(await one({ metricType: 'cardinality', metricField: 'service_name' })).toEqual([4]);
      const [p50, p90] = await one({ metricType: 'percentiles', metricField: f, percents: [50, 90] });
      // Quarry's percentiles are sketches (about 1% relative error).
      expect(p50).toBeGreaterThan(durations[99] * 0.95);
      expect(p50).toBeLessThan(durations[100] * 1.05);
      expect(p90).toBeGreaterThan(durations[179] * 0.95);
      expect(p90).toBeLessThan(durations[180] * 1.05);
    });
  });

  describe('variables and ad hoc filters', () => {
    it('lists terms of a field for template variables', async () => {
      const values = await ds.metricFindQuery('terms(service_name)', { range: RANGE });
      expect(values.map((v) => v.text).sort()).toEqual(['api', 'auth', 'db', 'web']);
      // Most frequent first.
      expect(values[0].text).toBe('api');
      const errorsOnly = await ds.metricFindQuery('{"find":"terms","field":"service_name","query":"severity_text:ERROR"}', {
        range: RANGE,
      });
      expect(errorsOnly.map((v) => v.text).sort()).toEqual([...new Set(DOCS.filter((d) => d.severity === 'ERROR').map((d) => d.service))].sort());
    });

    it('lists fields, including dynamic ones _field_caps does not report', async () => {
      const keys = (await ds.getTagKeys()).map((k) => k.text);
      expect(keys).toEqual(expect.arrayContaining(['severity_text', 'service_name', 'attributes.duration_ms', 'host']));
      expect(keys).not.toContain('body'); // not aggregatable
      const fields = (await ds.metricFindQuery('fields')).map((f) => f.text);
      expect(fields).toEqual(expect.arrayContaining(['body', 'timestamp', 'host']));
    });

    it('lists tag values narrowed by the other filters', async () => {
      const values = await ds.getTagValues({
        key: 'severity_text',
        filters: [{ key: 'service_name', operator: '=', value: 'db' }],
        timeRange: RANGE,
      });
      const expected = new Set(DOCS.filter((d) => d.service === 'db' && d.severity).map((d) => d.severity));
      expect(new Set(values.map((v) => v.text))).toEqual(expected);
      expect(expected.size).toBeLessThan(4);
    });
  });

  describe('log context', () => {
    let row: LogRowModel;

    beforeAll(async () => {
      const { data } = await run(ds, [{ refId: 'A', queryMode: 'logs', limit: 1000 }]);
      const frame = data[0] as DataFrame;
      const rowIndex = bodies(frame).indexOf('request 100 ok');
      expect(rowIndex).toBeGreaterThanOrEqual(0);
      const ms = field(frame, 'timestamp')[rowIndex];
      row = {
        dataFrame: frame,
        rowIndex,
        timeEpochMs: ms,
        timeEpochNs: field(frame, 'tsNs')[rowIndex],
        uid: field(frame, 'id')[rowIndex],
      } as LogRowModel;
    });

    it('goes backward: older lines and same-time siblings, without the row', async () => {
      const { data } = await ds.getLogRowContext(row, { direction: LogRowContextQueryDirection.Backward, limit: 5 });
      const got = bodies(data[0]).map(docIndex);
      expect(got).toHaveLength(5);
      expect(got[0]).toBe(101);
      expect(new Set(got)).toEqual(new Set([101, 99, 98, 97, 96]));
      expect(field(data[0], 'timestamp').every((t: number) => t <= row.timeEpochMs)).toBe(true);
    });

    it('goes forward: the next lines, oldest first', async () => {
      const { data } = await ds.getLogRowContext(row, { direction: LogRowContextQueryDirection.Forward, limit: 3 });
      expect(bodies(data[0]).map(docIndex)).toEqual([102, 103, 104]);
    });
  });
});
