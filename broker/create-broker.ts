import type { Aedes } from 'aedes'
import net from 'node:net'
import tls from 'node:tls'
import { countBy, countRefused, createBrokerStats, onRefused, type BrokerLimitKind } from './broker-stats.ts'
import { BrokerState } from './errors.ts'
import { loopbackFor, probeListener } from './listener-probe.ts'
import { createConnectionGate } from './connection-gate.ts'
import { createMqttCore, type BrokerDeps, type MqttCore } from './create-mqtt-core.ts'
import { createDeviceActivity, type BusiestDevices, type DeviceActivityOptions } from './device-activity.ts'
import { createEventThrottle } from '../certs/index.ts'
import { guardDirectory } from './guard-directory.ts'
import { BROKER_ACTOR } from './hooks/hook-deps.ts'
import { resolveLimits, type BrokerLimits, type BrokerLimitsInput } from './limits.ts'
import { readProxyHeader, resolveProxyProtocol, trustedProxyMatcher, type ProxyProtocolInput } from './proxy-protocol.ts'
import { createWebSocketListener } from './websocket-listener.ts'

export interface BrokerTlsOptions {
  /** the broker's private key, PEM */
  key: string
  /** the broker's certificate (chain), PEM */
  cert: string
  /** chain PEM of the CA that issues device certificates: the only trust anchor for clients */
  ca: string
}

export interface BrokerOptions {
  /** Default '127.0.0.1'; the composition root opts in to other interfaces. */
  host?: string
  /** Default 8883; 0 picks a free port (tests). */
  port?: number
  /**
   * MQTT over WebSockets with TLS on this port, path /mqtt (websocket-listener.ts), same host, TLS
   * options, gate and hooks as the TCP listener; 0 picks a free port. Default off (undefined).
   */
  wsPort?: number
  tls: BrokerTlsOptions
  /**
   * TLS session ticket keys (48 bytes) shared by the processes serving one port (`--workers`, workers.ts),
   * so a session resumed on another worker is still resumed; default: this process's own random keys.
   */
  ticketKeys?: Buffer
  limits?: BrokerLimitsInput
  /**
   * PROXY protocol v1/v2 from these load balancers (proxy-protocol.ts, docs/deployment.md); the
   * device's address from the header is the one the per-address gate, the audit and the log see.
   * Default off (trustedProxies [])
   */
  proxyProtocol?: ProxyProtocolInput
  /** the per-device message counts behind busiestDevices() */
  activity?: DeviceActivityOptions
}

export interface Broker extends Omit<MqttCore, 'aedes' | 'start' | 'handle' | 'close'> {
  /** The aedes instance, for what the listener API does not cover yet. Do not replace its hooks. */
  readonly aedes: Aedes
  readonly limits: Readonly<BrokerLimits>
  /** Binds the TCP listener and, with options.wsPort, the WebSocket one (`ws`, else null). */
  listen(): Promise<{ host: string; port: number; ws: { host: string; port: number } | null }>
  /**
   * New key, certificate and client trust chain (after a CA rotation): new handshakes use them,
   * connections already up stay as they are.
   */
  setTls(tls: BrokerTlsOptions): void
  /** Stops accepting, closes every connection and aedes; resolves when all is closed. Idempotent. */
  close(): Promise<void>
  /**
   * Readiness (GET /readyz): it is listening (else GH_BROKER_STATE) and a loopback TCP connection to its
   * port is accepted within timeoutMs, default 1000 (else GH_BROKER_NOT_ACCEPTING). The probe is not
   * logged as a TLS refusal.
   */
  acceptsConnections(timeoutMs?: number): Promise<void>
  /**
   * Every refused connection, with its reason (as counted in stats().refused): refused before TLS or a
   * CONNECT refused. Audited refusals are throttled; this is not. Returns the unsubscribe.
   */
  onConnectionRefused(listener: (reason: string) => void): () => void
  /** The top n devices (default 10) by messages in over the recent window (device-activity.ts). */
  busiestDevices(n?: number): BusiestDevices
}

/** A TLS failure's reason is a label only when it looks like a code (`CERT_HAS_EXPIRED`), never a free message. */
const TLS_CODE = /^[A-Z][A-Z0-9_]{0,63}$/

/** The per-address gate's refusals, as the limits they hit. */
const GATE_LIMITS: Readonly<Record<string, BrokerLimitKind>> = {
  'too-many-connections': 'connections-per-address',
  'connection-rate': 'connection-rate-per-address',
}

/**
 * The data plane: a mutual-TLS listener in front of aedes (docs/architecture.md).
 *
 *   TCP accept -> per-address gate (connection-gate.ts) -> TLS handshake (client certificate required
 *   and verified against options.tls.ca only, TLS >= 1.2, handshakeTimeout, no renegotiation) -> packet-size guard ->
 *   aedes with the Gatehouse hooks (create-mqtt-core.ts).
 *
 * With options.wsPort, a second TCP listener takes the same path (PROXY header, gate, the same TLS
 * options and certificate check, credentials replaced together by setTls) into an HTTPS server that
 * upgrades /mqtt to a WebSocket (websocket-listener.ts), whose stream then enters the same core.
 *
 * The raw TCP connection is accepted by a plain net.Server and handed to the TLS server with
 * `emit('connection')`, so that refused addresses never cost a handshake. noDelay is set on both:
 * with Nagle on, the CONNACK waits behind TLS 1.3 session tickets for the client's delayed ACK
 * (~48 ms per connect instead of ~5 ms; docs/conventions.md §29).
 */
export function createBroker(deps: BrokerDeps, options: BrokerOptions): Broker {
  const limits = resolveLimits(options.limits)
  const log = deps.log.child({ module: 'broker.listener' })
  const directory = guardDirectory(deps.directory, log)
  const stats = createBrokerStats()
  const core = createMqttCore(deps, limits, stats)
  const gate = createConnectionGate(limits, deps.clock)
  const activity = createDeviceActivity(deps.clock, options.activity)
  core.onDevicePublish(({ deviceId, receivedAtMs }) => activity.count(deviceId, receivedAtMs))
  const proxyProtocol = resolveProxyProtocol(options.proxyProtocol)
  const isTrustedProxy = proxyProtocol.trustedProxies.length > 0 ? trustedProxyMatcher(proxyProtocol.trustedProxies) : null
  /** raw socket -> the device's address from its PROXY header */
  const proxiedAddress = new WeakMap<net.Socket, { address: string; port: number }>()
  const throttle = createEventThrottle({ intervalMs: limits.auditIntervalMs, maxKeys: limits.maxTrackedKeys }, deps.clock)
  const sockets = new Set<net.Socket>()
  /** 'new' until listen() has bound the port */
  let state: 'new' | 'listening' | 'closing' | 'closed' = 'new'

  const tlsOptions: tls.TlsOptions = {
    key: options.tls.key,
    cert: options.tls.cert,
    ca: options.tls.ca,
    requestCert: true,
    // Node checks the client chain in JS after the handshake either way and, with rejectUnauthorized,
    // destroys the socket silently: no alert to the client, nothing to the server. We make the same
    // check ourselves in 'secureConnection' (and authenticate checks `authorized` again), so that a
    // refusal is logged with its reason (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE …).
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    handshakeTimeout: limits.handshakeTimeoutMs,
    noDelay: true,
    ...(options.ticketKeys && { ticketKeys: options.ticketKeys }),
  }
  const tlsServer = checkClientCertificates(tls.createServer(tlsOptions), (socket) => core.handle(socket))
  const wsServer =
    options.wsPort === undefined
      ? null
      : checkClientCertificates(
          createWebSocketListener({
            tls: tlsOptions,
            maxMessageBytes: limits.maxPacketBytes,
            upgradeTimeoutMs: limits.connectTimeoutMs,
            onStream: (stream) => core.handle(stream),
            onMessageTooLarge: () => countBy(stats.limitHits, 'packet-size'),
          }),
          () => {}, // the HTTPS server reads the upgrade request itself
        )

  /**
   * The one client-certificate check of both listeners: a connection whose certificate did not verify
   * against the device CA is refused (and logged) before any MQTT or HTTP byte is read.
   */
  function checkClientCertificates<S extends tls.Server>(server: S, onAuthorized: (socket: tls.TLSSocket) => void): S {
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      if (state !== 'listening') return void socket.destroy()
      showProxiedAddress(socket)
      if (socket.authorized !== true) {
        refuseTls(socket.remoteAddress ?? null, String(socket.authorizationError ?? 'NO_PEER_CERTIFICATE'), socket)
        return void socket.destroy()
      }
      refuseRenegotiation(socket)
      onAuthorized(socket)
    })
    server.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
      if (isOwnProbe(socket)) return void socket.destroy()
      // Node leaves the socket to this listener: on ERR_TLS_HANDSHAKE_TIMEOUT it is still open.
      showProxiedAddress(socket)
      const remoteAddress = socket.remoteAddress ?? null
      socket.destroy()
      refuseTls(remoteAddress, err.code ?? err.message, null)
    })
    return server
  }

  /**
   * A device never needs TLS renegotiation (TLS 1.2 only; 1.3 has none), and each one would cost the
   * broker a full handshake on demand: the first attempt ends the connection and counts as a TLS failure.
   */
  function refuseRenegotiation(socket: tls.TLSSocket): void {
    socket.disableRenegotiation()
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') refuseTls(socket.remoteAddress ?? null, err.code, null)
    })
  }

  /**
   * TLS refusals are not audited: the certificate did not verify, so there is no trustworthy subject.
   * They are normal traffic (info), but a scanner must not flood the log: once a minute per address.
   */
  function refuseTls(remoteAddress: string | null, reason: string, socket: tls.TLSSocket | null): void {
    countBy(stats.tlsFailures, TLS_CODE.test(reason) ? reason : 'other')
    const hit = throttle.hit(`tls:${remoteAddress}`)
    if (!hit.emit) return
    // the CN is as claimed by an unverified certificate: a hint for operators, nothing more
    const claimed = socket?.getPeerCertificate()?.subject?.CN
    log.info(
      { remoteAddress, reason, claimedCn: typeof claimed === 'string' ? claimed.slice(0, 64) : null, suppressed: hit.suppressed },
      'TLS refused',
    )
  }

  /** Local ports of acceptsConnections() probes not yet seen hanging up here (a few at most; the oldest dropped). */
  const probePorts = new Set<number>()
  function rememberProbe(localPort: number): void {
    probePorts.add(localPort)
    if (probePorts.size > 16) probePorts.delete(probePorts.values().next().value as number)
  }
  /**
   * A connection from acceptsConnections() that hung up before TLS, as it does: the raw socket's peer port
   * (read, and kept, when it was accepted) is the probe's local port.
   */
  function isOwnProbe(socket: tls.TLSSocket): boolean {
    const port = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent?.remotePort
    return port !== undefined && probePorts.delete(port)
  }

  /** A TLSSocket reads its peer from the TCP handle; behind a proxy, the header's address replaces it. */
  function showProxiedAddress(socket: tls.TLSSocket): void {
    const parent = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent
    const source = parent ? proxiedAddress.get(parent) : undefined
    if (!source) return
    Object.defineProperty(socket, 'remoteAddress', { value: source.address, configurable: true })
    Object.defineProperty(socket, 'remotePort', { value: source.port, configurable: true })
  }

  /** A raw TCP listener in front of `target`: PROXY header (when configured), then the per-address gate. */
  const acceptInto = (target: tls.Server) =>
    net.createServer({ noDelay: true }, (socket) => {
      if (state !== 'listening') return void socket.destroy()
      socket.on('error', () => {}) // the TLS socket above reports; a reset must not be unhandled here
      const peerAddress = socket.remoteAddress ?? 'unknown'
      if (isTrustedProxy === null) return void admit(socket, peerAddress, target)
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      void readProxyHeader(socket, isTrustedProxy(peerAddress), proxyProtocol.headerTimeoutMs).then((result) => {
        if (state !== 'listening' || socket.destroyed) return void socket.destroy()
        if (!result.ok) {
          socket.destroy()
          if (result.reason !== 'closed') refuseConnection(peerAddress, result.reason, { proxyAddress: peerAddress })
          return
        }
        if (result.source) proxiedAddress.set(socket, result.source)
        admit(socket, result.source?.address ?? peerAddress, target)
      })
    })
  const netServer = acceptInto(tlsServer)
  const wsNetServer = wsServer && acceptInto(wsServer)
  const netServers = wsNetServer ? [netServer, wsNetServer] : [netServer]

  /** The per-address gate, then the TLS server; `remoteAddress` is the device's (behind a proxy: its header's). */
  function admit(socket: net.Socket, remoteAddress: string, target: tls.Server): void {
    const decision = gate.admit(remoteAddress)
    if (!decision.ok) {
      socket.destroy()
      return refuseConnection(remoteAddress, decision.reason)
    }
    sockets.add(socket)
    socket.once('close', () => {
      sockets.delete(socket)
      decision.release()
    })
    target.emit('connection', socket)
  }

  /** Refused before TLS: over a per-address limit (connection.throttled) or a PROXY header problem (connection.refused). */
  function refuseConnection(remoteAddress: string, reason: string, extra: Record<string, unknown> = {}): void {
    countRefused(stats, reason)
    const limit = GATE_LIMITS[reason]
    if (limit) countBy(stats.limitHits, limit)
    const action = reason.startsWith('proxy-') ? 'connection.refused' : 'connection.throttled'
    const hit = throttle.hit(`${action}:${remoteAddress}`)
    if (!hit.emit) return
    directory.audit({
      actor: BROKER_ACTOR,
      action,
      subject: `ip:${remoteAddress}`,
      details: { reason, remoteAddress, ...extra, suppressed: hit.suppressed },
    })
    log.info({ remoteAddress, reason, ...extra, suppressed: hit.suppressed }, 'connection refused')
  }
  for (const server of netServers) {
    // each listener takes limits.maxConnections
    server.maxConnections = limits.maxConnections
    // over maxConnections Node closes the socket itself and tells only this event
    server.on('drop', () => {
      countRefused(stats, 'max-connections')
      countBy(stats.limitHits, 'max-connections')
    })
  }

  let starting: Promise<unknown> | null = null
  let closing: Promise<void> | null = null

  function bind(server: net.Server, port: number, host: string): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        server.on('error', (err) => log.error({ err }, 'listener error'))
        resolve(server.address() as net.AddressInfo)
      })
    })
  }

  async function start(): Promise<{ host: string; port: number; ws: { host: string; port: number } | null }> {
    const host = options.host ?? '127.0.0.1'
    let address: net.AddressInfo
    let wsAddress: net.AddressInfo | null = null
    try {
      await core.start()
      address = await bind(netServer, options.port ?? 8883, host)
      if (wsNetServer) wsAddress = await bind(wsNetServer, options.wsPort ?? 0, host)
    } catch (err) {
      // e.g. EADDRINUSE: leave nothing running behind a failed start
      state = 'closed'
      for (const server of netServers) if (server.listening) server.close()
      await core.close()
      throw err
    }
    if (state === 'new') state = 'listening'
    log.info({ host: address.address, port: address.port }, 'broker listening')
    if (wsAddress) log.info({ host: wsAddress.address, port: wsAddress.port }, 'broker listening on WebSockets')
    return { host: address.address, port: address.port, ws: wsAddress && { host: wsAddress.address, port: wsAddress.port } }
  }

  async function stop(): Promise<void> {
    await starting?.catch(() => {})
    state = 'closing'
    const serversClosed = Promise.all(
      netServers.filter((s) => s.listening).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    )
    await core.close()
    for (const socket of sockets) socket.destroy()
    await serversClosed
    state = 'closed'
    log.info('broker closed')
  }

  const { aedes, start: _start, handle: _handle, close: _close, ...api } = core
  return {
    ...api,
    aedes,
    limits,
    listen() {
      if (starting !== null || state !== 'new') return Promise.reject(new BrokerState('listen', starting ? 'started' : state))
      const started = start()
      starting = started
      return started
    },
    close() {
      closing ??= stop()
      return closing
    },
    async acceptsConnections(timeoutMs = 1000) {
      if (state !== 'listening' || !netServer.listening) throw new BrokerState('accept connections', state)
      const { address, port } = netServer.address() as net.AddressInfo
      await probeListener(loopbackFor(address), port, timeoutMs, rememberProbe)
    },
    busiestDevices: (n) => activity.busiest(n),
    onConnectionRefused(listener) {
      return onRefused(stats, (reason) => {
        try {
          listener(reason)
        } catch (err) {
          log.error({ err, event: 'refused' }, 'broker listener failed')
        }
      })
    },
    setTls(next) {
      for (const server of [tlsServer, wsServer])
        server?.setSecureContext({
          key: next.key,
          cert: next.cert,
          ca: next.ca,
          minVersion: 'TLSv1.2',
          ...(options.ticketKeys && { ticketKeys: options.ticketKeys }),
        })
      log.info('TLS credentials replaced')
    },
  }
}
