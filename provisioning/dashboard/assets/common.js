// Shared by the dashboard's pages: JSON calls with the session's CSRF token, safe DOM building
// (text only, never HTML from data), the header's sign-out, and formatting.
// biome-ignore lint/correctness/noUnusedVariables: the global the other page scripts (loaded after this one) use
const gh = (() => {
  let session
  async function sessionInfo() {
    session ??= await call('GET', '/dashboard/api/session')
    return session
  }
  async function call(method, path, body) {
    const headers = { accept: 'application/json' }
    if (method === 'POST') {
      headers['content-type'] = 'application/json'
      headers['x-csrf-token'] = (await sessionInfo()).csrfToken
    }
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(method === 'POST' && { body: JSON.stringify(body ?? {}) }),
    })
    if (res.status === 401) {
      location.assign('/dashboard/sign-in')
      throw new Error('signed out')
    }
    const data = await res.json()
    if (!res.ok) throw Object.assign(new Error(`${data.code}: ${data.detail}`), { problem: data })
    return data
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (k === 'class') node.className = v
      else if (k.startsWith('data-')) node.setAttribute(k, v)
      else node[k] = v
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c))
    return node
  }
  function table(columns, rows) {
    return el(
      'table',
      {},
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          columns.map((c) => el('th', {}, c)),
        ),
      ),
      el(
        'tbody',
        {},
        rows.map((r) =>
          el(
            'tr',
            {},
            r.map((v) => el('td', {}, v)),
          ),
        ),
      ),
    )
  }
  const when = (iso) => (iso ? `${new Date(iso).toISOString().replace('T', ' ').slice(0, 19)}Z` : '—')
  function fill(id, ...children) {
    const node = document.getElementById(id)
    node.replaceChildren(...children.flat())
    return node
  }
  async function header() {
    const { name } = await sessionInfo()
    fill('who', `signed in as ${name}`)
    document.getElementById('sign-out').addEventListener('click', async () => {
      await call('POST', '/dashboard/sign-out')
      location.assign('/dashboard/sign-in')
    })
  }
  /** A confirmation in the page's <dialog>: resolves true on Confirm. */
  function confirmAction(message) {
    const dialog = document.getElementById('confirm')
    fill('confirm-message', message)
    dialog.showModal()
    return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true }))
  }
  /** Server-sent overviews: calls onOverview with each one. */
  function live(onOverview) {
    const source = new EventSource('/dashboard/api/events')
    source.addEventListener('overview', (e) => onOverview(JSON.parse(e.data)))
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) return void fill('live', 'reconnecting…')
      // refused (signed out, or too many streams): a call shows which, and goes to sign-in on a 401
      fill('live', 'not live: reload the page')
      call('GET', '/dashboard/api/session').catch(() => {})
    })
    source.addEventListener('open', () => fill('live', 'live'))
    return source
  }
  return { call, el, table, when, fill, header, confirmAction, live }
})()
