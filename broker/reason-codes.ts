/**
 * MQTT return/reason codes, in one place (docs/conventions.md §6, §9). The broker speaks MQTT 3.1.1 today;
 * the v5 column is kept so that adding MQTT 5 is a table lookup, not a hunt.
 */

export const MQTT_3_1_1 = 4
export const MQTT_5 = 5

interface CodePair {
  /** MQTT 3.1.1 CONNACK return code (0-5), or null when 3.1.1 has no way to say it */
  v311: number | null
  /** MQTT 5 reason code */
  v5: number
}

export const REASON_CODES = {
  accepted: { v311: 0, v5: 0x00 },
  unsupportedProtocolVersion: { v311: 1, v5: 0x84 },
  serverUnavailable: { v311: 3, v5: 0x88 },
  notAuthorized: { v311: 5, v5: 0x87 },
  packetTooLarge: { v311: null, v5: 0x95 },
  quotaExceeded: { v311: null, v5: 0x97 },
  administrativeAction: { v311: null, v5: 0x98 },
  sessionTakenOver: { v311: null, v5: 0x8e },
  serverShuttingDown: { v311: null, v5: 0x8b },
} as const satisfies Record<string, CodePair>

/** SUBACK return code for a refused subscription (3.1.1 "Failure"; v5 0x87 Not authorized). */
export const SUBACK_FAILURE = 0x80

const BY_ERROR_CODE: Record<string, keyof typeof REASON_CODES> = {
  GH_BROKER_CONNECT_REFUSED: 'notAuthorized',
  GH_BROKER_DIRECTORY_UNAVAILABLE: 'serverUnavailable',
  GH_BROKER_CONNECT_RATE_LIMITED: 'serverUnavailable',
  GH_BROKER_PUBLISH_REFUSED: 'notAuthorized',
  GH_BROKER_PUBLISH_RATE_LIMITED: 'quotaExceeded',
  GH_BROKER_PACKET_TOO_LARGE: 'packetTooLarge',
}

/** The reason-code entry for a Gatehouse error; anything unknown is "not authorized" (fail closed). */
export function reasonFor(err: unknown): CodePair {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : ''
  return REASON_CODES[BY_ERROR_CODE[code] ?? 'notAuthorized']
}

/** MQTT 3.1.1 CONNACK return code for an error raised while connecting: 5 unless it is known. */
export function toConnackCode(err: unknown): number {
  return reasonFor(err).v311 ?? REASON_CODES.notAuthorized.v311
}
