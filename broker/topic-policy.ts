import { isDeviceId } from '../certs/index.ts'
import { deviceGrants, MAX_TOPIC_LENGTH, splitTopic, type TopicGrants } from './topics.ts'

/**
 * Topic policy (docs/architecture.md "The device topic contract"): pure functions, table-tested in
 * test/unit/broker/topic-policy.test.ts. The aedes hooks in hooks/ only adapt these decisions.
 *
 * The rule is least privilege, expressed as data: each principal gets a short list of MQTT filters
 * (topics.ts TopicGrants: deviceGrants for a device, claimGrants for a claim session) and a request is
 * allowed only when everything it can reach lies inside one of them. canPublishTo / canSubscribeTo
 * are the one mechanism; canPublish / canSubscribe are the device case.
 *
 * Wildcard subscriptions: a filter is allowed only if every topic it matches is allowed. Today's
 * allowed subscribe sets are exact topics (devices/{self}/settings, /insights, /renewal/response;
 * provisioning/{nonce}/response for a claim session), and any filter with '+' or '#' matches
 * infinitely many topics, so every wildcard filter is refused: 'devices/{self}/#' would reach the
 * device's own telemetry and settings/reported (publish-only); 'devices/{self}/+' reaches telemetry;
 * 'provisioning/+/response' would read every other claim session's certificate. If a subtree is
 * added to a grant later, filters inside it start to pass without touching this file.
 */

export type PolicyRefusal =
  | 'empty'
  | 'too-long'
  | 'invalid-character'
  | 'empty-level'
  | 'wildcard-in-topic'
  | 'malformed-filter'
  | 'invalid-device-id'
  | 'not-permitted'

export type PolicyDecision = { ok: true } | { ok: false; reason: PolicyRefusal }

const OK: PolicyDecision = Object.freeze({ ok: true })
const refuse = (reason: PolicyRefusal): PolicyDecision => ({ ok: false, reason })

/** Topic names may contain neither NUL ([MQTT-4.7.3-2]) nor other C0 controls or DEL. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/

export function canPublish(deviceId: string, topic: string): PolicyDecision {
  return isDeviceId(deviceId) ? canPublishTo(deviceGrants(deviceId), topic) : refuse('invalid-device-id')
}

export function canSubscribe(deviceId: string, filter: string): PolicyDecision {
  return isDeviceId(deviceId) ? canSubscribeTo(deviceGrants(deviceId), filter) : refuse('invalid-device-id')
}

/**
 * A principal's grants, split into levels once: grants are frozen per session at CONNECT, so the
 * publish path builds and splits no filter. A topic equal to a granted wildcard-free filter needs no
 * further check (a granted filter is a valid topic).
 */
interface CompiledGrants {
  exactPublish: ReadonlySet<string>
  publish: readonly string[][]
  subscribe: readonly string[][]
  /**
   * Topic names already found within a wildcard grant (devices/{id}/telemetry/temp under .../telemetry/#): a
   * device publishes to a handful of topics, so most messages then cost one Set lookup, not a split and a
   * match. Grants are immutable, so a topic allowed once stays allowed for them; at most
   * MAX_ALLOWED_TOPICS are kept, so a session that publishes to ever new topics holds a fixed amount.
   */
  allowedPublish: Set<string>
}
const MAX_ALLOWED_TOPICS = 64
const compiledGrants = new WeakMap<TopicGrants, CompiledGrants>()

function compiled(grants: TopicGrants): CompiledGrants {
  let c = compiledGrants.get(grants)
  if (c === undefined) {
    c = {
      exactPublish: new Set(grants.publish.filter((f) => !f.includes('+') && !f.includes('#'))),
      publish: grants.publish.map(splitTopic),
      subscribe: grants.subscribe.map(splitTopic),
      allowedPublish: new Set(),
    }
    compiledGrants.set(grants, c)
  }
  return c
}

/** May a principal with these grants publish to `topic` (a topic name: no wildcards)? */
export function canPublishTo(grants: TopicGrants, topic: string): PolicyDecision {
  const c = compiled(grants)
  if (c.exactPublish.has(topic) || c.allowedPublish.has(topic)) return OK
  const basic = checkCommon(topic)
  if (basic) return basic
  if (topic.includes('+') || topic.includes('#')) return refuse('wildcard-in-topic')
  const levels = splitTopic(topic)
  if (levels.some((l) => l.length === 0)) return refuse('empty-level')
  if (!c.publish.some((f) => filterWithin(levels, f))) return refuse('not-permitted')
  if (c.allowedPublish.size < MAX_ALLOWED_TOPICS) c.allowedPublish.add(topic)
  return OK
}

/** May a principal with these grants subscribe to `filter` (every topic it matches must be granted)? */
export function canSubscribeTo(grants: TopicGrants, filter: string): PolicyDecision {
  const basic = checkCommon(filter)
  if (basic) return basic
  const levels = splitTopic(filter)
  if (!isWellFormedFilter(levels)) return refuse('malformed-filter')
  if (levels.some((l) => l.length === 0)) return refuse('empty-level')
  return compiled(grants).subscribe.some((f) => filterWithin(levels, f)) ? OK : refuse('not-permitted')
}

function checkCommon(topic: string): PolicyDecision | null {
  if (typeof topic !== 'string' || topic.length === 0) return refuse('empty')
  if (topic.length > MAX_TOPIC_LENGTH) return refuse('too-long')
  if (CONTROL_CHARACTERS.test(topic) || topic.includes('\uFFFD')) return refuse('invalid-character')
  return null
}

/** '#' only as the whole last level, '+' only as a whole level (MQTT 3.1.1 §4.7.1). */
export function isWellFormedFilter(levels: readonly string[]): boolean {
  return levels.every((l, i) => {
    if (l.includes('#')) return l === '#' && i === levels.length - 1
    if (l.includes('+')) return l === '+'
    return true
  })
}

/**
 * True when every topic matched by `inner` is also matched by `outer` (both split into levels; a
 * concrete topic name is a filter without wildcards). '#' also matches its parent level, as in MQTT.
 */
export function filterWithin(inner: readonly string[], outer: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    const o = outer[i]
    const n = inner[i]
    if (o === '#') return true
    if (n === undefined || o === undefined) return n === undefined && o === undefined
    if (n === '#') return false
    if (o === '+') continue
    if (n === '+' || n !== o) return false
  }
}
