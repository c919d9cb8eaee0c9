/**
 * Every device of the load generator comes from 127.0.0.1: the per-IP and per-device limits must not bite.
 * (Its own file: gatehouse-broker.ts starts a broker when imported; the cluster bench writes these into a
 * data dir's gatehouse.json for `gatehouse start`.)
 */
export const BENCH_LIMITS = {
  maxConnections: 50_000,
  maxConnectionsPerIp: 50_000,
  connectionRatePerIp: { ratePerSecond: 100_000, burst: 100_000 },
  packetRate: { ratePerSecond: 1_000_000, burst: 1_000_000 },
  publishRate: { ratePerSecond: 1_000_000, burst: 1_000_000 },
  publishBytesRate: { ratePerSecond: 1_000_000_000, burst: 1_000_000_000 },
}
