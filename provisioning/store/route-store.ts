/**
 * Telemetry routes (migration 12). On the registry's connection, so a route, its audit entry and its
 * route.changed event commit together.
 */
export interface RouteRecord {
  id: string
  url: string
  /** null: the whole fleet */
  group: string | null
  /** the HMAC key of X-Gatehouse-Signature */
  secret: string
  batchSize: number
  batchMs: number
  queueMax: number
  redact: boolean
  consent: boolean
  createdAt: Date
  createdBy: string
}

export interface RouteStore {
  list(): Promise<RouteRecord[]>
  get(id: string): Promise<RouteRecord | undefined>
  count(): Promise<number>
  insert(record: RouteRecord): Promise<void>
  /** true when there was a row */
  delete(id: string): Promise<boolean>
}
