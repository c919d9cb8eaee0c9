import { InMemoryRegistryStore } from '../../../provisioning/store/in-memory-registry-store.ts'
import { registryStoreContract } from '../../contract/registry-store.contract.ts'

registryStoreContract('InMemoryRegistryStore', () => new InMemoryRegistryStore())
