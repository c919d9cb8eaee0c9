// The sign-in form: the key goes in a POST body once, and the server answers with a session cookie.
document.getElementById('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault()
  const error = document.getElementById('error')
  error.hidden = true
  const key = document.getElementById('key').value.trim()
  const res = await fetch('/dashboard/sign-in', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
    credentials: 'same-origin',
  })
  if (res.ok) {
    location.assign('/dashboard')
    return
  }
  const problem = await res.json().catch(() => ({}))
  error.textContent = `${problem.code ?? res.status}: ${problem.detail ?? 'sign-in failed'}`
  error.hidden = false
})
