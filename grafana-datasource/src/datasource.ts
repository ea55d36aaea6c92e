import {
  AdHocVariableFilter,
  DataFrame,
  DataQueryError,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceApi,
  DataSourceGetTagKeysOptions,
  DataSourceGetTagValuesOptions,
  DataSourceInstanceSettings,
  DataSourceWithLogsContextSupport,
  DataSourceWithSupplementaryQueriesSupport,
  LegacyMetricFindQueryOptions,
  LogRowContextOptions,
  LogRowContextQueryDirection,
  LogRowModel,
  MetricFindValue,
  ScopedVars,
  SupplementaryQueryOptions,
  SupplementaryQueryType,
  TimeRange,
  dateTime,
} from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import { Observable, from } from 'rxjs';

import { QuarryApi, QuarryApiError, detectTimestampField, resolveIndexExpression } from './api';
import {
  QueryContext,
  buildContextRequest,
  buildLogsRequest,
  buildLogsVolumeRequest,
  buildMetricsRequest,
  buildQueryString,
  buildTermsRequest,
} from './queryBuilder';
import {
  LOG_FIELDS,
  docTimeNs,
  fieldCapsToFields,
  fieldsFromDocuments,
  hitsToLogsFrame,
  logRowId,
  logsVolumeMeta,
  logsVolumeToFrames,
  mergeFieldLists,
  metricsResponseToFrames,
  termsToValues,
} from './responseParser';
import { FieldInfo, QuarryOptions, QuarryQuery, ResolvedSettings, resolveSettings } from './types';
import { parseVariableQuery } from './variables';

/** Grafana's default context page size, used when it does not give one. */
const DEFAULT_CONTEXT_LIMIT = 50;
const TAG_VALUES_LIMIT = 100;
const FIELDS_CACHE_MS = 60_000;
const FIELD_SAMPLE_DOCS = 50;

export class QuarryDatasource
  extends DataSourceApi<QuarryQuery, QuarryOptions>
  implements DataSourceWithLogsContextSupport<QuarryQuery>, DataSourceWithSupplementaryQueriesSupport<QuarryQuery>
{
  readonly api: QuarryApi;
  readonly settings: ResolvedSettings;
  private fieldsCache?: { at: number; fields: Promise<FieldInfo[]> };

  constructor(instanceSettings: DataSourceInstanceSettings<QuarryOptions>) {
    super(instanceSettings);
    this.api = new QuarryApi(instanceSettings.url ?? '');
    this.settings = resolveSettings(instanceSettings.jsonData ?? {});
  }

  // ------------------------------------------------------------------ queries

  query(request: DataQueryRequest<QuarryQuery>): Observable<DataQueryResponse> {
    return from(this.runQueries(request));
  }

  private async runQueries(request: DataQueryRequest<QuarryQuery>): Promise<DataQueryResponse> {
    const targets = request.targets.filter((target) => !target.hide);
    const data: DataFrame[] = [];
    const errors: DataQueryError[] = [];
    // One failing query must not blank the others of the panel.
    const results = await Promise.allSettled(targets.map((target) => this.runTarget(target, request)));
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        data.push(...result.value);
      } else {
        const error = result.reason as Error;
        errors.push({ refId: targets[i].refId, message: error?.message ?? String(error), status: (error as QuarryApiError)?.status });
      }
    });
    return errors.length > 0 ? { data, errors, error: errors[0] } : { data };
  }

  private async runTarget(target: QuarryQuery, request: DataQueryRequest<QuarryQuery>): Promise<DataFrame[]> {
    const ctx = this.queryContext(request.range, request.scopedVars, request.filters, request.intervalMs);
    if (target.logsVolume) {
      return this.runLogsVolume(target, ctx);
    }
    if ((target.queryMode ?? 'logs') === 'metrics') {
      const response = await this.api.search(this.settings.index, buildMetricsRequest(target, ctx));
      const groupBy = target.groupBy ? ctx.interpolateText!(target.groupBy).trim() : undefined;
      return metricsResponseToFrames(response, target, target.refId, groupBy || undefined);
    }
    const logsRequest = buildLogsRequest(target, ctx);
    const response = await this.api.search(this.settings.index, logsRequest);
    return [hitsToLogsFrame(response, this.settings, target.refId, logsRequest.query)];
  }

  private async runLogsVolume(target: QuarryQuery, ctx: QueryContext): Promise<DataFrame[]> {
    const meta = logsVolumeMeta(ctx.range, this.name, { ...target, logsVolume: undefined });
    let response;
    try {
      response = await this.api.search(this.settings.index, buildLogsVolumeRequest(target, ctx, true));
    } catch (error) {
      // A level field that is not a fast field cannot be aggregated: still show the volume.
      if ((error as QuarryApiError).status !== 400) {
        throw error;
      }
      response = await this.api.search(this.settings.index, buildLogsVolumeRequest(target, ctx, false));
    }
    return logsVolumeToFrames(response, target.refId, meta);
  }

  /** Everything the pure request builders need, with Grafana's variables and filters bound. */
  queryContext(range: TimeRange, scopedVars: ScopedVars = {}, filters?: AdHocVariableFilter[], intervalMs?: number): QueryContext {
    const templateSrv = getTemplateSrv();
    return {
      settings: this.settings,
      range: { fromMs: range.from.valueOf(), toMs: range.to.valueOf() },
      intervalMs,
      adhocFilters: filters ?? [],
      // 'lucene' renders multi-value variables as ("a" OR "b"), which Quarry's language reads.
      interpolateQuery: (text) => templateSrv.replace(text, scopedVars, 'lucene'),
      interpolateText: (text) => templateSrv.replace(text, scopedVars),
    };
  }

  interpolateVariablesInQueries(queries: QuarryQuery[], scopedVars: ScopedVars, filters?: AdHocVariableFilter[]): QuarryQuery[] {
    const templateSrv = getTemplateSrv();
    return queries.map((query) => ({
      ...query,
      query: buildQueryString(query.query, {
        settings: this.settings,
        range: { fromMs: 0, toMs: 0 },
        adhocFilters: filters,
        interpolateQuery: (text) => templateSrv.replace(text, scopedVars, 'lucene'),
      }),
      metricField: query.metricField ? templateSrv.replace(query.metricField, scopedVars) : query.metricField,
      groupBy: query.groupBy ? templateSrv.replace(query.groupBy, scopedVars) : query.groupBy,
    }));
  }

  filterQuery(query: QuarryQuery): boolean {
    return !query.hide;
  }

  getDefaultQuery(): Partial<QuarryQuery> {
    return { query: '', queryMode: 'logs', metricType: 'count' };
  }

  // ------------------------------------------------------------------ log volume

  getSupportedSupplementaryQueryTypes(): SupplementaryQueryType[] {
    return [SupplementaryQueryType.LogsVolume];
  }

  getSupplementaryQuery(options: SupplementaryQueryOptions, query: QuarryQuery): QuarryQuery | undefined {
    if (options.type !== SupplementaryQueryType.LogsVolume || (query.queryMode ?? 'logs') !== 'logs' || query.hide) {
      return undefined;
    }
    return { ...query, refId: `log-volume-${query.refId}`, logsVolume: true };
  }

  getSupplementaryRequest(
    type: SupplementaryQueryType,
    request: DataQueryRequest<QuarryQuery>
  ): DataQueryRequest<QuarryQuery> | undefined {
    const targets = request.targets
      .map((target) => this.getSupplementaryQuery({ type } as SupplementaryQueryOptions, target))
      .filter((target): target is QuarryQuery => target !== undefined);
    return targets.length > 0 ? { ...request, targets } : undefined;
  }

  // ------------------------------------------------------------------ log context

  getLogRowContext = async (
    row: LogRowModel,
    options?: LogRowContextOptions,
    _query?: QuarryQuery
  ): Promise<DataQueryResponse> => {
    const direction = options?.direction ?? LogRowContextQueryDirection.Backward;
    const limit = options?.limit ?? DEFAULT_CONTEXT_LIMIT;
    const rowTimeNs = rowTimestampNs(row);
    // Context is what happened around the line in the whole index, like Elasticsearch's
    // context view: the panel's query would hide the lines that explain it.
    const request = buildContextRequest(rowTimeNs, direction, limit, '', { settings: this.settings });
    const response = await this.api.search(this.settings.index, request);
    const ownId = rowBaseId(row);
    let hits = response.hits;
    if (direction === LogRowContextQueryDirection.Backward) {
      const ownIndex = hits.findIndex((doc) => logRowId(docTimeNs(doc, this.settings), doc) === ownId);
      hits = ownIndex >= 0 ? hits.filter((_, i) => i !== ownIndex) : hits;
    }
    hits = hits.slice(0, limit);
    const refId = `log-context-${row.dataFrame.refId ?? 'A'}-${direction}`;
    return { data: [hitsToLogsFrame({ ...response, hits }, this.settings, refId)] };
  };

  // ------------------------------------------------------------------ fields, filters, variables

  /** The index's fields, cached briefly: the editor asks for them on every keystroke. */
  getFields(): Promise<FieldInfo[]> {
    const now = Date.now();
    if (!this.fieldsCache || now - this.fieldsCache.at > FIELDS_CACHE_MS) {
      const fields = this.loadFields();
      fields.catch(() => (this.fieldsCache = undefined));
      this.fieldsCache = { at: now, fields };
    }
    return this.fieldsCache.fields;
  }

  /**
   * `_field_caps` of every index the expression selects (Quarry's `_field_caps` takes one
   * concrete index, not patterns), plus the dynamic fields of a few recent documents.
   */
  private async loadFields(): Promise<FieldInfo[]> {
    const index = this.settings.index;
    const indexIds =
      /[*,]/.test(index) || index.startsWith('-')
        ? resolveIndexExpression(index, (await this.api.listIndexes()).map((m) => m.index_id ?? m.index_config?.index_id ?? ''))
        : [index];
    const [lists, sample] = await Promise.all([
      Promise.all(indexIds.map((id) => this.api.fieldCaps(id).then(fieldCapsToFields))),
      this.api.search(index, { query: '', max_hits: FIELD_SAMPLE_DOCS }).catch(() => undefined),
    ]);
    const mapped = mergeFieldLists(lists);
    return mergeFieldLists([mapped, fieldsFromDocuments(sample?.hits ?? [], mapped)]);
  }

  async getTagKeys(_options?: DataSourceGetTagKeysOptions<QuarryQuery>): Promise<MetricFindValue[]> {
    const fields = await this.getFields();
    // Only aggregatable (fast) fields can list values, which ad hoc filters need.
    return fields.filter((f) => f.aggregatable).map((f) => ({ text: f.name, value: f.name }));
  }

  async getTagValues(options: DataSourceGetTagValuesOptions<QuarryQuery>): Promise<MetricFindValue[]> {
    const range = options.timeRange ?? this.defaultRange();
    // The other filters narrow the values offered, as in Grafana's own datasources.
    const otherFilters = (options.filters ?? []).filter((f) => f.key !== options.key);
    const ctx = this.queryContext(range, {}, otherFilters);
    const response = await this.api.search(this.settings.index, buildTermsRequest(options.key, TAG_VALUES_LIMIT, ctx));
    return termsToValues(response);
  }

  async metricFindQuery(query: string | { query?: string }, options?: LegacyMetricFindQueryOptions): Promise<MetricFindValue[]> {
    const text = typeof query === 'string' ? query : (query?.query ?? '');
    const templateSrv = getTemplateSrv();
    const parsed = parseVariableQuery(templateSrv.replace(text, options?.scopedVars));
    if (parsed.find === 'fields') {
      const fields = await this.getFields();
      return fields.filter((f) => !parsed.aggregatable || f.aggregatable).map((f) => ({ text: f.name, value: f.name }));
    }
    const ctx = this.queryContext(options?.range ?? this.defaultRange(), options?.scopedVars ?? {});
    const response = await this.api.search(this.settings.index, buildTermsRequest(parsed.field, parsed.size, ctx, parsed.query));
    return termsToValues(response);
  }

  /** Grafana passes the dashboard range to these calls since 10.3; older callers get a day. */
  private defaultRange(): TimeRange {
    return lastDay();
  }

  // ------------------------------------------------------------------ health check

  async testDatasource() {
    try {
      const detection = await detectTimestampField(this.api, this.settings.index);
      if (detection.indexIds.length === 0) {
        return { status: 'error', message: `Quarry answers, but no index matches \`${this.settings.index}\`.` };
      }
      if (detection.timeField && detection.timeField !== this.settings.timeField) {
        return {
          status: 'error',
          message: `The index's timestamp field is \`${detection.timeField}\`, but the datasource uses \`${this.settings.timeField}\`: fix it in the settings.`,
        };
      }
      if (detection.conflict) {
        return { status: 'error', message: `Quarry: ${detection.conflict}` };
      }
      return { status: 'success', message: `Quarry is reachable: ${detection.indexIds.length} index(es) match (${detection.indexIds.join(', ')}).` };
    } catch (error) {
      return { status: 'error', message: (error as Error).message };
    }
  }
}

function lastDay(): TimeRange {
  const to = dateTime();
  const from = dateTime(to).subtract(1, 'day');
  return { from, to, raw: { from: 'now-1d', to: 'now' } };
}

function frameValue(row: LogRowModel, name: string): unknown {
  const field = row.dataFrame.fields.find((f) => f.name === name);
  return field?.values[row.rowIndex];
}

/** The row's time in nanoseconds: our frames carry it exactly in `tsNs`. */
export function rowTimestampNs(row: LogRowModel): bigint {
  const exact = frameValue(row, LOG_FIELDS.timeNs);
  if (typeof exact === 'string' && /^\d+$/.test(exact)) {
    return BigInt(exact);
  }
  if (row.timeEpochNs && /^\d+$/.test(row.timeEpochNs)) {
    return BigInt(row.timeEpochNs);
  }
  return BigInt(Math.round(row.timeEpochMs)) * BigInt(1_000_000);
}

/** The row's content id, without the suffix that tells identical documents apart. */
function rowBaseId(row: LogRowModel): string | undefined {
  const id = frameValue(row, LOG_FIELDS.id) ?? row.rowId;
  return typeof id === 'string' ? id.replace(/#\d+$/, '') : undefined;
}
