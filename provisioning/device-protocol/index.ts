// provisioning/device-protocol/: the device payload schemas and the AsyncAPI document built from them.
export { buildAsyncApi } from './asyncapi.ts'
