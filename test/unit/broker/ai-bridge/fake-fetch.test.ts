import { providerStubContract } from '../../../contract/provider-stub.contract.ts'
import { createFakeFetch } from '../../../helpers/ai-stubs.ts'

// The network-free stub the unit tests use answers as the HTTP stub does (integration/ai-bridge/http-stub.test.ts).
providerStubContract('createFakeFetch', async (handler) => {
  const fetch = createFakeFetch(handler)
  return { fetch, url: 'http://provider.invalid', requests: fetch.requests }
})
