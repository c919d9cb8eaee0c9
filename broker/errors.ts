import createError from '@fastify/error'

// Coded errors of broker/ (docs/conventions.md §8). Each code needs a `### GH_…` entry in docs/errors.md.
// MQTT return codes for them live once, in reason-codes.ts.

/** The device may not connect (revoked, disabled, unknown, clientId != CN …); reason in the message. */
export const ConnectRefused = createError('GH_BROKER_CONNECT_REFUSED', 'connection refused: %s', 403)

/** A device went over limits.connectRatePerClientId (a reconnect loop); CONNACK 3, it should back off. */
export const ConnectRateLimited = createError('GH_BROKER_CONNECT_RATE_LIMITED', "device '%s' connects too often; back off and retry", 429)

/** The device directory (control plane) failed to answer a lookup; the device may retry. */
export const DirectoryUnavailable = createError('GH_BROKER_DIRECTORY_UNAVAILABLE', 'device directory lookup failed', 503)

/** A device published outside its topics; the connection is closed (MQTT 3.1.1 has no PUBACK error). */
export const PublishRefused = createError('GH_BROKER_PUBLISH_REFUSED', "publish to '%s' refused: %s", 403)

/** A device went over its per-device message or byte rate; the connection is closed. */
export const PublishRateLimited = createError('GH_BROKER_PUBLISH_RATE_LIMITED', "device '%s' exceeded its publish %s limit", 429)

/** A device went over its per-device packet rate (any packet type after CONNECT); the connection is closed. */
export const PacketRateLimited = createError('GH_BROKER_PACKET_RATE_LIMITED', "device '%s' exceeded its packet rate with a %s", 429)

/** A client's stored session is full: more unreleased inbound QoS 2 packets than limits.maxInflightInbound. */
export const SessionFull = createError('GH_BROKER_SESSION_FULL', "session of '%s' is full: %s", 429)

/** An MQTT packet declared a remaining length above limits.maxPacketBytes; the connection is closed. */
export const PacketTooLarge = createError('GH_BROKER_PACKET_TOO_LARGE', 'MQTT packet of %s bytes exceeds the limit of %s bytes', 413)

/** publishToDevice() was given a topic that is not devices/{id}/settings, /insights or /renewal/response. */
export const TopicNotDeviceBound = createError('GH_BROKER_TOPIC_INVALID', "'%s' is not a topic the broker sends to devices", 400)

// Enrollment over MQTT (broker/enrollment.ts, docs/device-lifecycle.md): answered on the response
// topic as { ok: false, error: { code, message } }, never thrown at a caller.

/** A session sent more enrollment requests than wait in its queue; it may send again after an answer. */
export const EnrollmentBusy = createError(
  'GH_ENROLLMENT_BUSY',
  'too many enrollment requests from this session (at most %s wait): send the next after an answer',
  429,
)

/** The enrollment service failed unexpectedly; the request may be sent again. Logged at error. */
export const EnrollmentUnavailable = createError('GH_ENROLLMENT_UNAVAILABLE', 'enrollment is unavailable right now: try again later', 503)

/** createBroker() options out of range (a programming or config error, caught at start-up). */
export const BrokerOptionInvalid = createError('GH_BROKER_OPTION_INVALID', 'invalid broker option %s: %s', 500)

/** listen() called twice, or after close(). */
export const BrokerState = createError('GH_BROKER_STATE', 'broker cannot %s: it is %s', 500)

// AI telemetry bridge (broker/ai-bridge/, docs/ai-bridge.md)

/** attachAiBridge() / resolveAiBridgeOptions() options are invalid; every problem is listed. */
export const AiOptionsInvalid = createError('GH_AI_OPTIONS_INVALID', 'invalid AI bridge options: %s', 500)

/** A provider in use names an environment variable (apiKeyEnv, secretEnv) that the composition root did not resolve. */
export const AiSecretMissing = createError(
  'GH_AI_SECRET_MISSING',
  "AI provider '%s' needs the environment variable %s, which is not set",
  500,
)

/** A provider answered with an error status or an unusable body (the reason says which; never the key). */
export const AiProviderFailed = createError('GH_AI_PROVIDER_FAILED', "AI provider '%s' failed: %s", 502)

/** A provider did not answer within its timeoutMs. */
export const AiProviderTimeout = createError('GH_AI_PROVIDER_TIMEOUT', "AI provider '%s' did not answer within %s ms", 504)

/** The provider's circuit breaker is open after repeated failures: no call is made until the cool-down ends. */
export const AiCircuitOpen = createError('GH_AI_CIRCUIT_OPEN', "AI provider '%s' is paused after %s consecutive failures, until %s", 503)

/** Readiness: the MQTT listener did not accept a loopback TCP connection (create-broker.ts, acceptsConnections). */
export const BrokerNotAccepting = createError(
  'GH_BROKER_NOT_ACCEPTING',
  'the MQTT listener on port %s does not accept connections (%s)',
  503,
)

// Cluster mode (broker/cluster.ts, README "Running a cluster")

/** `cluster.redisUrl` is set but Redis did not answer at start; the URL is shown without its password. */
export const ClusterUnreachable = createError(
  'GH_BROKER_CLUSTER_UNREACHABLE',
  'cannot reach the cluster Redis at %s (%s): start Redis, or check cluster.redisUrl / --cluster / GATEHOUSE_CLUSTER_REDIS_URL',
  503,
)

/** `--workers`: a worker failed to start, or workers kept crashing; every worker was stopped (broker/workers.ts). */
export const WorkersFailed = createError(
  'GH_BROKER_WORKERS_FAILED',
  "the broker workers stopped: %s; see the log above for the worker's own error, fix it and start again",
  500,
)
