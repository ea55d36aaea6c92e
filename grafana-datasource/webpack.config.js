// Builds the plugin as Grafana loads it: one AMD module (dist/module.js) whose Grafana,
// React and RxJS imports are provided by Grafana at runtime, plus plugin.json and assets.
const path = require('path');
const CopyWebpackPlugin = require('copy-webpack-plugin');
const pluginJson = require('./src/plugin.json');

module.exports = (_env, argv) => ({
  mode: argv.mode ?? 'production',
  devtool: argv.mode === 'development' ? 'eval-source-map' : 'source-map',
  context: path.join(__dirname, 'src'),
  entry: { module: './module.ts' },
  output: {
    path: path.join(__dirname, 'dist'),
    filename: '[name].js',
    library: { type: 'amd' },
    publicPath: `public/plugins/${pluginJson.id}/`,
    uniqueName: pluginJson.id,
    clean: true,
  },
  externals: [
    'react',
    'react-dom',
    '@grafana/data',
    '@grafana/runtime',
    '@grafana/ui',
    '@grafana/schema',
    'rxjs',
    'rxjs/operators',
    'lodash',
    '@emotion/css',
    '@emotion/react',
  ],
  resolve: { extensions: ['.ts', '.tsx', '.js'] },
  module: {
    rules: [
      {
        test: /\.tsx?$/,
        exclude: /node_modules/,
        loader: 'ts-loader',
        // Type checking is `npm run typecheck`; the bundle only needs transpiling.
        options: { transpileOnly: true },
      },
    ],
  },
  plugins: [
    new CopyWebpackPlugin({
      patterns: [
        { from: 'plugin.json', to: '.' },
        { from: 'img', to: 'img' },
        { from: '../README.md', to: '.' },
      ],
    }),
  ],
  performance: { hints: false },
});
