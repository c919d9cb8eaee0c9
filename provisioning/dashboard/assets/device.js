// One device: fetched on load and again on every live snapshot (a connect, a disconnect, a change).
const { el, table, when, fill, call } = gh
const deviceId = decodeURIComponent(location.pathname.split('/').pop())
const json = (v) => JSON.stringify(v ?? null, null, 2)

const CONFIRM = {
  disable: 'Disable this device? It is disconnected now and refused until enabled again.',
  enable: 'Enable this device? It may connect again with its current certificate.',
  renew: 'Issue a new certificate for this device? The current one keeps working for the renewal overlap.',
  revoke: 'Revoke this device and all its certificates? This is permanent.',
}

function usageRow(label, used, budget) {
  return [label, used, budget ?? 'no AI bridge', budget ? `${Math.round((100 * used) / Math.max(1, budget))}%` : '—']
}

function draw(d) {
  fill('device-id', d.device.id)
  document.title = `Gatehouse: ${d.device.id}`
  const current = d.certificates.find((c) => c.status === 'active')
  fill(
    'summary',
    el(
      'div',
      { class: 'card', id: 'device-status' },
      el('span', { class: 'value' }, d.device.status),
      el('span', { class: 'label' }, 'status'),
    ),
    el(
      'div',
      { class: 'card', id: 'device-connection' },
      el('span', { class: 'value' }, d.connected ? 'connected' : 'offline'),
      el('span', { class: 'label' }, `last seen ${when(d.lastSeen)}`),
    ),
    el(
      'div',
      { class: 'card' },
      el('span', { class: 'value' }, when(current?.notAfter)),
      el('span', { class: 'label' }, 'certificate valid until'),
    ),
    el(
      'div',
      { class: 'card' },
      el('span', { class: 'value' }, `${d.device.group ?? '—'} / ${d.device.tier}`),
      el('span', { class: 'label' }, 'group / tier'),
    ),
  )
  for (const b of document.querySelectorAll('[data-action]')) {
    const a = b.dataset.action
    b.disabled =
      d.device.status === 'revoked' ||
      (a === 'disable' && d.device.status !== 'active') ||
      (a === 'enable' && d.device.status !== 'disabled')
  }
  fill(
    'certificates',
    table(
      ['serial', 'status', 'not before', 'not after', 'fingerprint'],
      d.certificates.map((c) => [c.serial, c.status, when(c.notBefore), when(c.notAfter), c.fingerprint]),
    ),
  )
  fill(
    'connections',
    table(
      ['at', 'event', 'remote address', 'serial', 'reason'],
      d.connections.map((c) => [when(c.at), c.event, c.remoteAddress ?? '—', c.serial, c.reason ?? '']),
    ),
  )
  const s = d.settings
  fill('settings-state', `version ${s.version}, ${s.inSync ? 'in sync' : 'out of sync'}; reported ${when(s.reported?.at)}`)
  fill('desired', json(s.desired))
  fill('reported', json(s.reported?.settings))
  fill('delta', json(s.delta))
  const b = d.usage.budget
  fill(
    'usage',
    table(
      ['today', 'used', 'daily budget', 'share'],
      [usageRow('requests', d.usage.today.requests, b?.dailyRequests), usageRow('tokens', d.usage.today.tokens, b?.dailyTokens)],
    ),
    el('p', { class: 'hint' }, `last 30 days: ${d.usage.last30Days.requests} requests, ${d.usage.last30Days.tokens} tokens`),
  )
  fill(
    'insights',
    table(
      ['at', 'provider', 'summary'],
      d.insights.map((i) => [when(i.at), i.provider, i.summary]),
    ),
  )
  fill(
    'audit',
    table(
      ['at', 'action', 'actor', 'details'],
      d.audit.map((e) => [when(e.at), e.action, e.actor, e.details]),
    ),
  )
}

function showError(err) {
  const node = fill('error', err.message)
  node.hidden = false
}

async function refresh() {
  try {
    draw(await call('GET', `/dashboard/api/devices/${encodeURIComponent(deviceId)}`))
    document.getElementById('error').hidden = true
  } catch (err) {
    showError(err)
  }
}

async function act(action) {
  if (!(await gh.confirmAction(CONFIRM[action]))) return
  const body = action === 'renew' && document.getElementById('csr').value.trim() ? { csr: document.getElementById('csr').value } : {}
  try {
    const result = await call('POST', `/dashboard/api/devices/${encodeURIComponent(deviceId)}/${action}`, body)
    fill('action-result', `${action}: done`)
    if (action === 'renew') {
      const out = document.getElementById('renewed')
      out.value = [result.privateKeyPem, result.certificatePem, result.chainPem].filter(Boolean).join('\n')
      out.hidden = false
    }
  } catch (err) {
    fill('action-result', err.message)
  }
  await refresh()
}

for (const b of document.querySelectorAll('[data-action]')) b.addEventListener('click', () => void act(b.dataset.action))
void gh.header()
void refresh()
gh.live(() => void refresh())
