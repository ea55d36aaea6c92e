import { DataSourceInstanceSettings, PluginType } from '@grafana/data';

import { QuarryDatasource } from '../../src/datasource';
import { QuarryOptions } from '../../src/types';

/** A datasource as Grafana would construct it; `url` stands in for the data proxy URL. */
export function makeDatasource(url: string, jsonData: QuarryOptions): QuarryDatasource {
  const settings: DataSourceInstanceSettings<QuarryOptions> = {
    id: 1,
    uid: 'quarry-test',
    type: 'quarry-logs-datasource',
    name: 'Quarry',
    url,
    access: 'proxy',
    readOnly: false,
    jsonData,
    meta: {
      id: 'quarry-logs-datasource',
      name: 'Quarry',
      type: PluginType.datasource,
      module: '',
      baseUrl: '',
      info: {
        author: { name: 'Quarry' },
        description: '',
        links: [],
        logos: { small: '', large: '' },
        screenshots: [],
        updated: '',
        version: '',
      },
    },
  };
  return new QuarryDatasource(settings);
}
