import { providerStubContract } from '../../contract/provider-stub.contract.ts'
import { startHttpStub } from '../../helpers/ai-stubs.ts'

// A real HTTP server on loopback, reached by Node's own fetch.
providerStubContract('startHttpStub with fetch', async (handler) => {
  const { url, requests } = await startHttpStub(handler)
  return { fetch: globalThis.fetch, url, requests }
})
