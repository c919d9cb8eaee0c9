// provisioning/metrics/: the Prometheus collector, fed by the planes' counters (docs/architecture.md, "Metrics").
export { createMetrics, type Metrics } from './create-metrics.ts'
