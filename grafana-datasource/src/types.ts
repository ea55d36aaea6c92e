import { DataQuery, DataSourceJsonData } from '@grafana/data';

export type QueryMode = 'logs' | 'metrics';

export type MetricType = 'count' | 'avg' | 'sum' | 'min' | 'max' | 'percentiles' | 'cardinality';

export const METRIC_TYPES: MetricType[] = ['count', 'avg', 'sum', 'min', 'max', 'percentiles', 'cardinality'];

export interface QuarryQuery extends DataQuery {
  /** Quarry query language (Lucene-style); empty matches everything. */
  query?: string;
  queryMode?: QueryMode;
  /** Logs mode: how many log lines to fetch. */
  limit?: number;
  /** Metrics mode. */
  metricType?: MetricType;
  /** Field the metric is computed over (all but `count` need one). */
  metricField?: string;
  /** Percentiles mode: which percents, e.g. [50, 95, 99]. */
  percents?: number[];
  /** Optional `terms` group-by: one series per value. */
  groupBy?: string;
  groupByLimit?: number;
  /**
   * Set only on the queries Grafana's supplementary-query machinery derives from a logs
   * query: asks for the log-volume histogram instead of log lines.
   */
  logsVolume?: boolean;
}

export const DEFAULT_LOGS_LIMIT = 100;
export const DEFAULT_GROUP_BY_LIMIT = 10;
export const DEFAULT_PERCENTS = [50, 95, 99];

export const DEFAULT_QUERY: Partial<QuarryQuery> = {
  query: '',
  queryMode: 'logs',
  limit: DEFAULT_LOGS_LIMIT,
  metricType: 'count',
};

export interface QuarryOptions extends DataSourceJsonData {
  /** Index id, comma list or `*` pattern, as Quarry's search endpoint accepts. */
  index?: string;
  /** The index's `doc_mapping.timestamp_field`; detected from the index metadata. */
  timeField?: string;
  /** Field holding the log level (OpenTelemetry's `severity_text` by default). */
  logLevelField?: string;
  /** Field holding the log line (`body` by default). */
  logMessageField?: string;
}

export const DEFAULT_LOG_LEVEL_FIELD = 'severity_text';
export const DEFAULT_LOG_MESSAGE_FIELD = 'body';
export const DEFAULT_TIME_FIELD = 'timestamp';

/** What the query builder and response parser need to know about the datasource. */
export interface ResolvedSettings {
  index: string;
  timeField: string;
  logLevelField: string;
  logMessageField: string;
}

export function resolveSettings(options: QuarryOptions): ResolvedSettings {
  return {
    index: options.index?.trim() || '*',
    timeField: options.timeField?.trim() || DEFAULT_TIME_FIELD,
    logLevelField: options.logLevelField?.trim() || DEFAULT_LOG_LEVEL_FIELD,
    logMessageField: options.logMessageField?.trim() || DEFAULT_LOG_MESSAGE_FIELD,
  };
}

// ---- Quarry's REST API shapes (see searcher/src/request.rs in the Quarry repo) ----

export interface QuarrySearchRequest {
  query: string;
  /** Seconds since the epoch, inclusive. */
  start_timestamp?: number;
  /** Seconds since the epoch, exclusive. */
  end_timestamp?: number;
  max_hits: number;
  start_offset?: number;
  sort_by?: string;
  aggs?: Record<string, unknown>;
  /**
   * `[sortValue]` or `[sortValue, "split:segment:doc"]`. Date sort values are epoch
   * nanoseconds, past JavaScript's safe integers, so they are kept as bigint here and
   * written into the JSON body verbatim (see `serializeSearchRequest`).
   */
  search_after?: Array<bigint | number | string>;
}

export interface QuarrySearchResponse {
  num_hits: number;
  hits: Array<Record<string, unknown>>;
  aggregations?: Record<string, AggregationResult>;
  next_search_after?: unknown[];
  elapsed_time_micros: number;
  errors: string[];
}

export interface Bucket {
  key: string | number;
  key_as_string?: string;
  doc_count: number;
  [subAggregation: string]: unknown;
}

export interface AggregationResult {
  buckets?: Bucket[];
  value?: number | null;
  values?: Record<string, number | null>;
  [other: string]: unknown;
}

export interface FieldCapsResponse {
  indices?: string[];
  fields: Record<string, Record<string, { type: string; searchable?: boolean; aggregatable?: boolean }>>;
}

export interface FieldInfo {
  name: string;
  type: string;
  searchable: boolean;
  aggregatable: boolean;
}
