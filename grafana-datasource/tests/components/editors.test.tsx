/**
 * @jest-environment jsdom
 */
// The editors rendered with the real @grafana/ui in jsdom: they mount, show the right
// controls per mode, complete field names, and write what the user types into the query.
jest.mock('@grafana/runtime', () => require('../support/runtimeMock'));

import { DataSourceSettings } from '@grafana/data';
import React, { act } from 'react';
import { Root, createRoot } from 'react-dom/client';

import { ConfigEditor } from '../../src/components/ConfigEditor';
import { QueryEditor } from '../../src/components/QueryEditor';
import { QuarryDatasource } from '../../src/datasource';
import { FieldInfo, QuarryOptions, QuarryQuery } from '../../src/types';

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

const FIELDS: FieldInfo[] = [
  { name: 'attributes.duration_ms', type: 'double', searchable: true, aggregatable: true },
  { name: 'service_name', type: 'keyword', searchable: true, aggregatable: true },
  { name: 'severity_text', type: 'keyword', searchable: true, aggregatable: true },
];

const datasource = { getFields: () => Promise.resolve(FIELDS) } as unknown as QuarryDatasource;

let container: HTMLDivElement;
let root: Root;

beforeEach(() => {
  container = document.createElement('div');
  document.body.appendChild(container);
  root = createRoot(container);
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
});

async function renderQueryEditor(query: QuarryQuery, onChange = jest.fn(), onRunQuery = jest.fn()) {
  await act(async () => {
    root.render(<QueryEditor datasource={datasource} query={query} onChange={onChange} onRunQuery={onRunQuery} />);
  });
  return { onChange, onRunQuery };
}

/** Types into a React-controlled input the way a user does. */
function type(input: HTMLInputElement, text: string) {
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
  setter.call(input, text);
  input.setSelectionRange(text.length, text.length);
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

describe('QueryEditor', () => {
  it('shows the query input and limit in logs mode', async () => {
    await renderQueryEditor({ refId: 'A', queryMode: 'logs', query: 'body:failed', limit: 25 });
    const input = container.querySelector<HTMLInputElement>('input[aria-label="Quarry query"]')!;
    expect(input.value).toBe('body:failed');
    expect(container.textContent).toContain('Limit');
    expect(container.textContent).not.toContain('Group by');
  });

  it('shows metric, field, percents and group-by controls in metrics mode', async () => {
    await renderQueryEditor({ refId: 'A', queryMode: 'metrics', metricType: 'percentiles', metricField: 'attributes.duration_ms' });
    for (const label of ['Metric', 'Field', 'Percents', 'Group by']) {
      expect(container.textContent).toContain(label);
    }
    expect(container.textContent).not.toContain('Limit');
  });

  it('completes field names from the datasource and writes them into the query', async () => {
    let query: QuarryQuery = { refId: 'A', queryMode: 'logs', query: '' };
    const onChange = jest.fn((next: QuarryQuery) => (query = next));
    await renderQueryEditor(query, onChange);
    const input = container.querySelector<HTMLInputElement>('input[aria-label="Quarry query"]')!;
    await act(async () => type(input, 'se'));
    await renderQueryEditor(query, onChange); // the parent re-renders with the new value
    const options = [...container.querySelectorAll('[role="option"]')].map((o) => o.textContent);
    expect(options).toEqual(['service_name keyword', 'severity_text keyword']);
    await act(async () => {
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown', bubbles: true }));
    });
    await act(async () => {
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    });
    expect(query.query).toBe('severity_text:');
  });
});

describe('ConfigEditor', () => {
  it('edits the index, timestamp and log level fields into jsonData', async () => {
    const options = {
      id: 1,
      uid: 'q',
      name: 'Quarry',
      type: 'quarry-logs-datasource',
      url: 'http://localhost:7280',
      access: 'proxy',
      jsonData: { index: 'logs' },
      secureJsonFields: {},
    } as unknown as DataSourceSettings<QuarryOptions>;
    const onOptionsChange = jest.fn();
    await act(async () => {
      root.render(<ConfigEditor options={options} onOptionsChange={onOptionsChange} />);
    });
    expect(container.textContent).toContain('Detect from index');
    const byPlaceholder = (p: string) => container.querySelector<HTMLInputElement>(`input[placeholder="${p}"]`)!;
    expect(byPlaceholder('logs-*').value).toBe('logs');
    await act(async () => type(byPlaceholder('severity_text'), 'level'));
    expect(onOptionsChange).toHaveBeenLastCalledWith(expect.objectContaining({ jsonData: { index: 'logs', logLevelField: 'level' } }));
  });
});
