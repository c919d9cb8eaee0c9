// The fleet overview: drawn from each server-sent snapshot (GET /dashboard/api/events).
const { el, table, when, fill } = gh
let chart

function card(label, value, id) {
  return el('div', { class: 'card', id }, el('span', { class: 'value' }, value), el('span', { class: 'label' }, label))
}

const deviceLink = (id) => el('a', { href: `/dashboard/devices/${encodeURIComponent(id)}` }, id)
const auditRows = (entries) => entries.map((e) => [when(e.at), e.action, e.subject, e.actor, e.details])

function drawExpiry({ expiry, scanned, truncated }) {
  fill(
    'expiry-note',
    `${expiry.expired} expired, ${expiry.later} later; ${scanned} active devices scanned${truncated ? ' (truncated)' : ''}`,
  )
  const data = [expiry.weekStarts.map((iso) => Date.parse(iso) / 1000), expiry.counts]
  if (chart) return chart.setData(data)
  const target = document.getElementById('expiry-chart')
  chart = new uPlot(
    {
      width: Math.min(900, target.clientWidth || 900),
      height: 220,
      series: [
        {},
        {
          label: 'certificates expiring that week',
          fill: 'rgba(200, 90, 40, 0.5)',
          stroke: '#c85a28',
          paths: uPlot.paths.bars({ size: [0.8] }),
          points: { show: false },
        },
      ],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    },
    data,
    target,
  )
}

function draw(o) {
  const d = o.devices
  fill(
    'counts',
    card('registered', d.registered, 'count-registered'),
    card('connected', d.connected, 'count-connected'),
    card('disabled', d.disabled, 'count-disabled'),
    card('revoked', d.revoked, 'count-revoked'),
  )
  fill(
    'connected',
    o.connectedDevices.length ? o.connectedDevices.map((id) => el('li', {}, deviceLink(id))) : el('li', { class: 'hint' }, 'none'),
  )
  fill(
    'sync',
    table(
      ['group', 'in sync', 'out of sync'],
      o.fleet.settingsByGroup.map((g) => [g.group, g.inSync, g.outOfSync]),
    ),
  )
  fill(
    'ai',
    table(
      ['tier', 'devices', 'requests', 'tokens', 'throttled since start'],
      o.fleet.aiByTier.map((t) => [t.tier, t.devices, t.requests, t.tokens, t.throttled]),
    ),
  )
  const b = o.busiestDevices
  fill('busiest-note', `messages in since ${when(b.since)}${b.untracked ? `; ${b.untracked} from devices not tracked` : ''}`)
  fill(
    'busiest',
    table(
      ['device', 'messages in'],
      b.devices.map((d) => [deviceLink(d.deviceId), d.messagesIn]),
    ),
  )
  fill('refused', table(['at', 'action', 'subject', 'actor', 'details'], auditRows(o.refusedConnections)))
  fill('audit', table(['at', 'action', 'subject', 'actor', 'details'], auditRows(o.recentAudit)))
  drawExpiry(o.fleet)
}

document.getElementById('find').addEventListener('submit', (e) => {
  e.preventDefault()
  location.assign(`/dashboard/devices/${encodeURIComponent(document.getElementById('find-id').value.trim())}`)
})
void gh.header()
gh.live(draw)
