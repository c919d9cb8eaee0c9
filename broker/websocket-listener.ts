import https from 'node:https'
import type { Duplex } from 'node:stream'
import type tls from 'node:tls'
import { createWebSocketStream, WebSocketServer } from 'ws'

/** The path MQTT clients open by default (mqtt.js, Paho, esp-mqtt: `wss://host:port/mqtt`). */
export const MQTT_WEBSOCKET_PATH = '/mqtt'

export interface WebSocketListenerOptions {
  /** the same TLS options as the TCP listener (client certificate requested, verified by create-broker.ts) */
  tls: tls.TlsOptions
  /** largest WebSocket message: one MQTT packet at most (limits.maxPacketBytes) */
  maxMessageBytes: number
  /** time allowed for the HTTP upgrade request after the TLS handshake (limits.connectTimeoutMs) */
  upgradeTimeoutMs: number
  /** gets each upgraded connection as a duplex stream that looks like the TLS socket to the hooks */
  onStream(stream: Duplex): void
  /** a WebSocket message over maxMessageBytes closed its connection */
  onMessageTooLarge(remoteAddress: string | null): void
}

/**
 * MQTT over WebSockets (RFC 6455, subprotocol `mqtt`) on an HTTPS server with the TCP listener's TLS
 * options. The HTTPS server is only the TLS half: create-broker.ts hands it raw sockets after the same
 * per-address gate, and checks the client certificate on 'secureConnection' exactly as for MQTT over
 * TLS. Here an authorised TLS connection may upgrade on /mqtt; the WebSocket becomes a stream
 * (ws' createWebSocketStream) that carries the TLS socket's peer certificate and address, so
 * authentication, policy, the packet-size guard, budgets, presence and audit are the core's one path.
 * Bounded: messages at maxMessageBytes (ws closes with 1009 above it), no compression (no inflate
 * bombs), the upgrade request at 8 KiB of headers within upgradeTimeoutMs; anything but an upgrade on
 * /mqtt gets a 4xx and the connection is closed.
 */
export function createWebSocketListener(options: WebSocketListenerOptions): https.Server {
  const server = https.createServer({
    ...options.tls,
    maxHeaderSize: 8 * 1024,
    headersTimeout: options.upgradeTimeoutMs,
    requestTimeout: options.upgradeTimeoutMs,
  })
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
  })
  server.on('request', (_req, res) => {
    res.writeHead(426, { connection: 'close', upgrade: 'websocket', 'content-type': 'text/plain' })
    res.end(`MQTT over WebSockets: upgrade on ${MQTT_WEBSOCKET_PATH} with subprotocol mqtt\n`)
  })
  server.on('upgrade', (req, socket: tls.TLSSocket, head: Buffer) => {
    const url = req.url ?? ''
    if (url.split('?')[0] !== MQTT_WEBSOCKET_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      // aedes reports errors too; this one is a limit hit (ws has closed the connection with 1009)
      stream.on('error', (err: Error & { code?: string }) => {
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') options.onMessageTooLarge(socket.remoteAddress ?? null)
      })
      options.onStream(asPeerStream(stream, socket))
    })
  })
  return server
}

/**
 * The stream gets what the hooks read of a TLS socket (authenticate.ts: `authorized`,
 * `getPeerCertificate`; hook-deps.ts: `remoteAddress`), from the TLS socket under the WebSocket.
 */
function asPeerStream(stream: Duplex, socket: tls.TLSSocket): Duplex {
  return Object.defineProperties(stream, {
    authorized: { get: () => socket.authorized },
    getPeerCertificate: { value: (detailed?: boolean) => socket.getPeerCertificate(detailed === true) },
    remoteAddress: { get: () => socket.remoteAddress },
  })
}
