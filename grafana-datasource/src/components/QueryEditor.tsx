import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { Combobox, ComboboxOption, InlineField, InlineFieldRow, Input, RadioButtonGroup, Stack } from '@grafana/ui';
import React, { useEffect, useState } from 'react';

import { QuarryDatasource } from '../datasource';
import {
  DEFAULT_GROUP_BY_LIMIT,
  DEFAULT_LOGS_LIMIT,
  DEFAULT_PERCENTS,
  FieldInfo,
  METRIC_TYPES,
  MetricType,
  QuarryOptions,
  QuarryQuery,
  QueryMode,
} from '../types';
import { QueryInput } from './QueryInput';

type Props = QueryEditorProps<QuarryDatasource, QuarryQuery, QuarryOptions>;

const MODES: Array<SelectableValue<QueryMode>> = [
  { label: 'Logs', value: 'logs' },
  { label: 'Metrics', value: 'metrics' },
];

const METRIC_OPTIONS: Array<ComboboxOption<MetricType>> = METRIC_TYPES.map((type) => ({ label: type, value: type }));

/** Types a numeric metric (avg, sum, percentiles…) can be computed over, in `_field_caps` terms. */
const NUMERIC_TYPES = new Set(['long', 'unsigned_long', 'double', 'float', 'integer', 'date', 'date_nanos']);

export function parsePercents(text: string): number[] {
  return text
    .split(',')
    .map((part) => Number(part.trim()))
    .filter((n) => Number.isFinite(n) && n > 0 && n <= 100);
}

export function QueryEditor({ datasource, query, onChange, onRunQuery }: Props) {
  const [fields, setFields] = useState<FieldInfo[]>([]);
  const [percentsText, setPercentsText] = useState((query.percents ?? DEFAULT_PERCENTS).join(', '));

  useEffect(() => {
    let cancelled = false;
    datasource
      .getFields()
      .then((list) => !cancelled && setFields(list))
      // Without field caps the editor still works; only completion is missing.
      .catch(() => !cancelled && setFields([]));
    return () => {
      cancelled = true;
    };
  }, [datasource]);

  const mode = query.queryMode ?? 'logs';
  const metricType = query.metricType ?? 'count';
  const update = (patch: Partial<QuarryQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  const aggregatable = fields.filter((f) => f.aggregatable);
  const metricFieldOptions = aggregatable
    .filter((f) => metricType === 'cardinality' || NUMERIC_TYPES.has(f.type))
    .map((f) => ({ label: f.name, value: f.name, description: f.type }));
  const groupByOptions = aggregatable.map((f) => ({ label: f.name, value: f.name, description: f.type }));

  return (
    <Stack direction="column" gap={1}>
      <InlineFieldRow>
        <InlineField label="Mode">
          <RadioButtonGroup options={MODES} value={mode} onChange={(value) => update({ queryMode: value })} />
        </InlineField>
        <InlineField label="Query" grow tooltip='Quarry query language: field:value, AND/OR/NOT, "phrases", ranges, wildcards'>
          <QueryInput
            value={query.query ?? ''}
            fields={fields}
            placeholder='e.g. severity_text:ERROR AND body:"connection reset"'
            onChange={(text) => onChange({ ...query, query: text })}
            onRunQuery={onRunQuery}
          />
        </InlineField>
      </InlineFieldRow>
      {mode === 'logs' ? (
        <InlineFieldRow>
          <InlineField label="Limit" tooltip="Number of log lines, newest first">
            <Input
              type="number"
              width={12}
              min={1}
              defaultValue={query.limit ?? DEFAULT_LOGS_LIMIT}
              onBlur={(e) => update({ limit: Number(e.currentTarget.value) || DEFAULT_LOGS_LIMIT })}
            />
          </InlineField>
        </InlineFieldRow>
      ) : (
        <InlineFieldRow>
          <InlineField label="Metric">
            <Combobox<MetricType>
              width={18}
              options={METRIC_OPTIONS}
              value={metricType}
              onChange={(option) => update({ metricType: option.value })}
            />
          </InlineField>
          {metricType !== 'count' && (
            <InlineField label="Field" invalid={!query.metricField} error="This metric needs a field">
              <Combobox
                width={30}
                createCustomValue
                options={metricFieldOptions}
                value={query.metricField ?? null}
                placeholder="numeric field"
                onChange={(option) => update({ metricField: option.value })}
              />
            </InlineField>
          )}
          {metricType === 'percentiles' && (
            <InlineField label="Percents">
              <Input
                width={18}
                value={percentsText}
                onChange={(e) => setPercentsText(e.currentTarget.value)}
                onBlur={() => update({ percents: parsePercents(percentsText) })}
              />
            </InlineField>
          )}
          <InlineField label="Group by" tooltip="One series per value of this field (terms)">
            <Combobox
              width={30}
              isClearable
              createCustomValue
              options={groupByOptions}
              value={query.groupBy ?? null}
              placeholder="(none)"
              onChange={(option) => update({ groupBy: option?.value || undefined })}
            />
          </InlineField>
          {query.groupBy && (
            <InlineField label="Top" tooltip="How many values to graph, most frequent first">
              <Input
                type="number"
                width={8}
                min={1}
                defaultValue={query.groupByLimit ?? DEFAULT_GROUP_BY_LIMIT}
                onBlur={(e) => update({ groupByLimit: Number(e.currentTarget.value) || DEFAULT_GROUP_BY_LIMIT })}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
    </Stack>
  );
}
