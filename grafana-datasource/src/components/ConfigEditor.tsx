import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { Alert, Button, DataSourceHttpSettings, InlineField, InlineFieldRow, Input, Stack } from '@grafana/ui';
import React, { useState } from 'react';

import { QuarryApi, detectTimestampField } from '../api';
import { DEFAULT_LOG_LEVEL_FIELD, DEFAULT_LOG_MESSAGE_FIELD, DEFAULT_TIME_FIELD, QuarryOptions } from '../types';

type Props = DataSourcePluginOptionsEditorProps<QuarryOptions>;

const LABEL_WIDTH = 22;

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const [detecting, setDetecting] = useState(false);
  const [detection, setDetection] = useState<{ severity: 'success' | 'error'; text: string } | undefined>();
  const jsonData = options.jsonData;

  const setJson = (patch: Partial<QuarryOptions>) =>
    onOptionsChange({ ...options, jsonData: { ...options.jsonData, ...patch } });

  const detect = async () => {
    setDetecting(true);
    setDetection(undefined);
    try {
      // Through Grafana's data proxy, which only knows the saved URL: the datasource must be saved first.
      const api = new QuarryApi(`/api/datasources/proxy/uid/${options.uid}`);
      const found = await detectTimestampField(api, jsonData.index ?? '*');
      if (!found.timeField) {
        setDetection({ severity: 'error', text: `No timestamp field found for indexes: ${found.indexIds.join(', ') || '(none match)'}` });
      } else {
        setJson({ timeField: found.timeField });
        setDetection({
          severity: found.conflict ? 'error' : 'success',
          text: found.conflict ?? `Detected \`${found.timeField}\` from ${found.indexIds.join(', ')}`,
        });
      }
    } catch (error) {
      setDetection({ severity: 'error', text: `${(error as Error).message} (save the datasource URL first)` });
    } finally {
      setDetecting(false);
    }
  };

  return (
    <Stack direction="column" gap={2}>
      <DataSourceHttpSettings
        defaultUrl="http://localhost:7280"
        dataSourceConfig={options}
        onChange={onOptionsChange}
        showAccessOptions={false}
      />
      <div>
        <h3>Quarry</h3>
        <InlineFieldRow>
          <InlineField label="Index" labelWidth={LABEL_WIDTH} tooltip="An index id, a comma list, or a pattern such as logs-*">
            <Input width={40} value={jsonData.index ?? ''} placeholder="logs-*" onChange={(e) => setJson({ index: e.currentTarget.value })} />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField label="Timestamp field" labelWidth={LABEL_WIDTH} tooltip="The index's doc_mapping.timestamp_field">
            <Input
              width={40}
              value={jsonData.timeField ?? ''}
              placeholder={DEFAULT_TIME_FIELD}
              onChange={(e) => setJson({ timeField: e.currentTarget.value })}
            />
          </InlineField>
          <Button variant="secondary" onClick={detect} disabled={detecting || !options.uid} icon={detecting ? 'spinner' : 'search'}>
            Detect from index
          </Button>
        </InlineFieldRow>
        {detection && <Alert severity={detection.severity} title={detection.text} />}
        <InlineFieldRow>
          <InlineField label="Log level field" labelWidth={LABEL_WIDTH} tooltip="Field whose value (ERROR, WARN, …) colours log lines">
            <Input
              width={40}
              value={jsonData.logLevelField ?? ''}
              placeholder={DEFAULT_LOG_LEVEL_FIELD}
              onChange={(e) => setJson({ logLevelField: e.currentTarget.value })}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField label="Log message field" labelWidth={LABEL_WIDTH} tooltip="Field shown as the log line">
            <Input
              width={40}
              value={jsonData.logMessageField ?? ''}
              placeholder={DEFAULT_LOG_MESSAGE_FIELD}
              onChange={(e) => setJson({ logMessageField: e.currentTarget.value })}
            />
          </InlineField>
        </InlineFieldRow>
      </div>
    </Stack>
  );
}
