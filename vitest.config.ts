import { defineConfig } from 'vitest/config'

// Two projects (docs/conventions.md §22): unit tests open no sockets (aedes runs over in-memory streams)
// and touch the disk only in temp dirs (a real SQLite file where a store is involved); integration tests
// use real TLS on loopback port 0, real SQLite files in temp dirs, openssl and mosquitto clients.
export default defineConfig({
  test: {
    // Vitest's default is one worker per core but one (a single worker on a 2-core CI machine): most
    // integration tests wait on TLS peers, child processes and Redis rather than compute, so two workers
    // keep both cores busy and the suite well under ten minutes there (docs/conventions.md §22)
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
          // unit files share a worker's loaded modules instead of importing every module again per file:
          // re-importing was most of the unit project's time on 2 cores (back to back on the shared box,
          // all 111 files: 128.6 s -> 36.3 s, import 83 s -> 15 s). Unit tests hold no mocks or
          // module-level state (docs/conventions.md §22)
          isolate: false,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: 'forks',
        },
      },
    ],
  },
})
