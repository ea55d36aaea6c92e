import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { QuarryDatasource } from './datasource';
import { QuarryOptions, QuarryQuery } from './types';

export const plugin = new DataSourcePlugin<QuarryDatasource, QuarryQuery, QuarryOptions>(QuarryDatasource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
