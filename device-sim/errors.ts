import createError from '@fastify/error'

// Coded errors of device-sim/ (docs/conventions.md §8); each code has an entry in docs/errors.md.
// Refusals that Gatehouse answers over MQTT (GH_CLAIM_*, GH_RENEWAL_*, GH_CSR_*) keep Gatehouse's
// own code: see AnswerRefused.

export const SimBrokerUrlInvalid = createError(
  'GH_SIM_BROKER_URL_INVALID',
  "invalid broker URL '%s': use mqtts://HOST:PORT (MQTT over TLS)",
  400,
)
export const SimNoBundles = createError(
  'GH_SIM_NO_BUNDLES',
  "no device bundles in '%s' (each device is a folder <id>/ with cert.pem, key.pem and ca.pem): create them with `gatehouse device create`, point --bundles at them, or run with --provision",
  400,
)
export const SimClaimUnreadable = createError(
  'GH_SIM_CLAIM_UNREADABLE',
  "the claim bundle in '%s' cannot be read (%s): pass the claim's folder as `gatehouse claim create --out` wrote it (cert.pem, key.pem, ca.pem)",
  400,
)
export const SimNoConnection = createError(
  'GH_SIM_NOT_CONNECTED',
  'no simulated device could connect to %s (last error: %s): check that Gatehouse is running there, the broker address and port, and that the certificates are current',
  503,
)
export const SimBundleStale = createError(
  'GH_SIM_BUNDLE_STALE',
  "bundle folders in '%s' do not belong to this Gatehouse: %s. Move those folders away (or delete them) and run again to have --provision issue new ones, or point --bundles / --data-dir at the bundles and data directory that belong together",
  409,
)
export const SimConnectFailed = createError('GH_SIM_CONNECT_FAILED', 'could not connect to %s as %s: %s', 503)
export const SimAnswerTimeout = createError(
  'GH_SIM_ANSWER_TIMEOUT',
  'no answer on %s within %d ms: is Gatehouse running a version with claim provisioning and renewal over MQTT?',
  504,
)
export const SimSubscribeRefused = createError('GH_SIM_SUBSCRIBE_REFUSED', "the broker refused the subscription to '%s' (SUBACK 0x80)", 403)
export const SimBundleUnwritable = createError(
  'GH_SIM_BUNDLE_UNWRITABLE',
  "the renewed bundle of '%s' could not be saved in '%s': %s (the device goes on with it in memory)",
  500,
)
export const SimAnswerInvalid = createError(
  'GH_SIM_ANSWER_INVALID',
  'the answer on %s is not what docs/device-lifecycle.md describes: %s',
  502,
)

/** A refusal that Gatehouse answered (`{"ok": false, "error": {code, message}}`), with its own code. */
export class AnswerRefused extends Error {
  readonly code: string
  readonly answer: Record<string, unknown>
  constructor(code: string, message: string, answer: Record<string, unknown>) {
    super(message)
    this.name = 'AnswerRefused'
    this.code = code
    this.answer = answer
  }
}
