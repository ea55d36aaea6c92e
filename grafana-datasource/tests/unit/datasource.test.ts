// The datasource with canned HTTP answers: request routing, error handling, supplementary
// queries and log context bookkeeping. Real HTTP is in tests/integration.
jest.mock('@grafana/runtime', () => require('../support/runtimeMock'));

import {
  DataQueryRequest,
  LogRowContextQueryDirection,
  LogRowModel,
  SupplementaryQueryType,
  dateTime,
} from '@grafana/data';
import { lastValueFrom } from 'rxjs';

import { QuarryApi, detectTimestampField, resolveIndexExpression } from '../../src/api';
import { hitsToLogsFrame } from '../../src/responseParser';
import { QuarryQuery, resolveSettings } from '../../src/types';
import { makeDatasource } from '../support/datasourceFactory';
import { FetchOptions, requests, setFetchHandler } from '../support/runtimeMock';

const range = { from: dateTime(1767225600000), to: dateTime(1767229200000), raw: { from: 'a', to: 'b' } };

function request(targets: QuarryQuery[]): DataQueryRequest<QuarryQuery> {
  return {
    requestId: 'r',
    interval: '1m',
    intervalMs: 60_000,
    range,
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: 'explore',
    startTime: 0,
  };
}

function answer(route: (options: FetchOptions, body: any) => unknown) {
  setFetchHandler(async (options) => {
    const body = typeof options.data === 'string' ? JSON.parse(options.data) : undefined;
    const data = route(options, body);
    if (data instanceof Error) {
      throw { status: 400, data: { error: data.message } };
    }
    return { data, status: 200, ok: true };
  });
}

beforeEach(() => {
  requests.length = 0;
});
afterAll(() => setFetchHandler(undefined));

describe('QuarryApi', () => {
  it('POSTs a pre-serialised search body to the proxy URL', async () => {
    answer(() => ({ num_hits: 0, hits: [], errors: [], elapsed_time_micros: 1 }));
    await new QuarryApi('/api/datasources/proxy/uid/x/').search('logs-*', { query: 'a', max_hits: 1, search_after: [BigInt('1767225608119000123')] });
    expect(requests[0]).toMatchObject({
      url: '/api/datasources/proxy/uid/x/api/v1/logs-*/search',
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
    });
    expect(requests[0].data).toBe('{"query":"a","max_hits":1,"search_after":[1767225608119000123]}');
  });

  it("turns Quarry's {error} answers into errors with the status", async () => {
    answer(() => new Error('unexpected `:` at 3'));
    await expect(new QuarryApi('').search('logs', { query: 'a::', max_hits: 1 })).rejects.toMatchObject({
      message: 'Quarry search failed (400): unexpected `:` at 3',
      status: 400,
    });
  });

  it('resolves index expressions like Quarry and detects the timestamp field', async () => {
    expect(resolveIndexExpression('logs-*,-logs-old,metrics', ['logs-a', 'logs-old', 'metrics', 'other'])).toEqual(['logs-a', 'metrics']);
    answer((options) =>
      options.url.endsWith('/api/v1/indexes')
        ? [
            { index_config: { index_id: 'logs-a', doc_mapping: { timestamp_field: 'ts' } } },
            { index_config: { index_id: 'logs-b', doc_mapping: { timestamp_field: 'time' } } },
          ]
        : { index_id: 'one', timestamp_field: 'timestamp' }
    );
    expect(await detectTimestampField(new QuarryApi(''), 'one')).toEqual({ timeField: 'timestamp', indexIds: ['one'] });
    const conflict = await detectTimestampField(new QuarryApi(''), 'logs-*');
    expect(conflict.indexIds).toEqual(['logs-a', 'logs-b']);
    expect(conflict.conflict).toMatch(/different timestamp fields: ts, time/);
  });
});

describe('QuarryDatasource', () => {
  const ds = makeDatasource('http://quarry', { index: 'logs', timeField: 'timestamp' });

  it('runs each target and reports a failing one without dropping the others', async () => {
    answer((_options, body) => {
      if (body.query === 'bad:(') {
        return new Error('unterminated group');
      }
      return body.aggs
        ? { num_hits: 1, hits: [], errors: [], elapsed_time_micros: 1, aggregations: { histogram: { buckets: [{ key: 1, doc_count: 1 }] } } }
        : { num_hits: 1, hits: [{ timestamp: '2026-01-01T00:00:00Z', body: 'x' }], errors: [], elapsed_time_micros: 1 };
    });
    const response = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', queryMode: 'logs', query: 'x' },
          { refId: 'B', queryMode: 'metrics', metricType: 'count' },
          { refId: 'C', query: 'bad:(' },
          { refId: 'D', query: 'hidden', hide: true },
        ])
      )
    );
    expect(response.data.map((f) => f.refId)).toEqual(['A', 'B']);
    expect(response.errors).toEqual([{ refId: 'C', message: 'Quarry search failed (400): unterminated group', status: 400 }]);
    expect(requests).toHaveLength(3);
  });

  it('offers log volume for logs queries only, as a histogram split by level', async () => {
    const logs: QuarryQuery = { refId: 'A', queryMode: 'logs', query: 'x' };
    expect(ds.getSupportedSupplementaryQueryTypes()).toEqual([SupplementaryQueryType.LogsVolume]);
    expect(ds.getSupplementaryQuery({ type: SupplementaryQueryType.LogsVolume }, { refId: 'B', queryMode: 'metrics' })).toBeUndefined();
    const volume = ds.getSupplementaryRequest(SupplementaryQueryType.LogsVolume, request([logs, { refId: 'B', queryMode: 'metrics' }]))!;
    expect(volume.targets).toEqual([{ ...logs, refId: 'log-volume-A', logsVolume: true }]);

    answer((_options, body) => {
      // A level field that cannot be aggregated: the datasource falls back to plain counts.
      if (body.aggs.histogram.aggs) {
        return new Error('field `severity_text` is not a fast field');
      }
      return { num_hits: 3, hits: [], errors: [], elapsed_time_micros: 1, aggregations: { histogram: { buckets: [{ key: 1, doc_count: 3 }] } } };
    });
    const response = await lastValueFrom(ds.query(volume));
    expect(response.data.map((f) => [f.name, f.fields[1].values])).toEqual([['logs', [3]]]);
    expect(response.data[0].meta.custom.datasourceName).toBe('Quarry');
  });

  it('asks for context with a nanosecond cursor and drops the row itself', async () => {
    const settings = resolveSettings({ timeField: 'timestamp' });
    const docs = [
      { timestamp: '2026-01-01T00:00:05.000000007Z', body: 'row' },
      { timestamp: '2026-01-01T00:00:05.000000007Z', body: 'same-time sibling' },
      { timestamp: '2026-01-01T00:00:04Z', body: 'older' },
    ];
    const frame = hitsToLogsFrame({ num_hits: 1, hits: [docs[0]], errors: [], elapsed_time_micros: 1 }, settings, 'A');
    const row = { dataFrame: frame, rowIndex: 0, timeEpochMs: 1767225605000, timeEpochNs: '1767225605000000000' } as LogRowModel;
    answer(() => ({ num_hits: 3, hits: docs, errors: [], elapsed_time_micros: 1 }));
    const response = await ds.getLogRowContext(row, { direction: LogRowContextQueryDirection.Backward, limit: 2 });
    expect(requests[0].data).toBe('{"query":"","max_hits":3,"sort_by":"-timestamp","search_after":[1767225605000000008]}');
    expect(response.data[0].fields.find((f: { name: string }) => f.name === 'body').values).toEqual(['same-time sibling', 'older']);
  });
});
