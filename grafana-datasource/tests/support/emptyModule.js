// Stands in for stylesheets that @grafana/ui imports (`import 'x.css'`): Jest cannot run CSS.
module.exports = {};
