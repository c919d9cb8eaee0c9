import type { Logger } from 'pino'
import { createBroker, type Broker } from './broker/index.ts'
import { systemClock, type Clock, type Random } from './certs/index.ts'
import { authorityOptions, type Config } from './config.ts'
import {
  createChangeFeed,
  createRegistryDirectory,
  initControlPlane,
  loadServerTls,
  openControlPlane,
  type ChangeFeed,
  type ControlPlane,
} from './provisioning/index.ts'

/**
 * The composition root (CONVENTIONS.md §1, §13): the only file that imports both planes. `gatehouse
 * start` and the tests wire Gatehouse the same way, through createGatehouse.
 */
export interface GatehouseDeps {
  log: Logger
  clock?: Clock
  random?: Random
  /** the CA passphrase (from GATEHOUSE_CA_PASSPHRASE / _FILE), never from a flag */
  passphrase?: string
}

export interface Gatehouse {
  control: ControlPlane
  feed: ChangeFeed
  broker: Broker
  mqtt: { host: string; port: number }
  close(): Promise<void>
}

/** Runs Gatehouse: control plane, change feed and the mTLS MQTT broker, on embedded defaults. */
export async function startGatehouse(config: Readonly<Config>, deps: GatehouseDeps): Promise<Gatehouse> {
  const clock = deps.clock ?? systemClock
  const log = deps.log
  await initControlPlane(config.dataDir, { keyAlgorithm: config.keyAlgorithm, hostnames: [...config.hostnames] }, deps, 'gatehouse')
  const control = await openControlPlane(config.dataDir, authorityOptions(config), deps)
  const tls = await loadServerTls(config.dataDir, deps.passphrase)
  const feed = createChangeFeed({ store: control.store, clock, log: log.child({ module: 'provisioning.feed' }) }, { intervalMs: config.changeFeedIntervalMs })
  const directory = createRegistryDirectory({ store: control.store, feed, clock, log: log.child({ module: 'provisioning.directory' }) })
  const broker = createBroker(
    { directory, clock, log },
    { host: config.host, port: config.mqttPort, tls, limits: config.limits },
  )
  feed.start()
  let mqtt: { host: string; port: number }
  try {
    mqtt = await broker.listen()
  } catch (err) {
    feed.stop()
    control.close()
    throw err
  }
  let closed: Promise<void> | undefined
  return {
    control,
    feed,
    broker,
    mqtt,
    close() {
      closed ??= (async () => {
        feed.stop()
        await broker.close()
        control.close()
      })()
      return closed
    },
  }
}
