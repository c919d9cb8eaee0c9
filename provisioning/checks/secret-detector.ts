/**
 * Does a settings value look like a secret (a key, a token, a password)? Used to find secrets stored
 * under a name that is not sealed (provisioning/settings/secrets.ts: only `*_secret` / `*Secret` are).
 */
const PEM = /-----BEGIN [A-Z ]+-----/
/** prefixes of well-known credentials: Gatehouse API keys, OpenAI, AWS, GitHub, Slack, Google, Stripe, JWTs */
const KNOWN_PREFIXES = /^(ghk_|sk-|AKIA|ASIA|ghp_|gho_|github_pat_|xox[abpr]-|AIza|sk_live_|rk_live_|eyJ[\w-]+\.[\w-]+\.)/
/** names that say "secret" without the sealing suffix */
const SECRET_NAME = /(pass(word|wd|phrase)?|token|api_?key|private_?key|credential)s?$/i

/** Shannon entropy of a string, in bits per character. */
export function entropy(text: string): number {
  const counts = new Map<string, number>()
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  let bits = 0
  for (const n of counts.values()) bits -= (n / text.length) * Math.log2(n / text.length)
  return bits
}

/** A random-looking token: long, no spaces, letters and digits mixed, high entropy. */
function looksRandom(value: string): boolean {
  return value.length >= 20 && !/\s/.test(value) && /[a-zA-Z]/.test(value) && /\d/.test(value) && entropy(value) >= 4
}

export function looksLikeSecret(key: string, value: unknown): boolean {
  if (typeof value !== 'string' || value.length === 0) return false
  return PEM.test(value) || KNOWN_PREFIXES.test(value) || looksRandom(value) || (SECRET_NAME.test(key) && value.length >= 6)
}
