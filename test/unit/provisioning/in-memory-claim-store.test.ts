import { InMemoryClaimStore } from '../../../provisioning/store/in-memory-claim-store.ts'
import { claimStoreContract } from '../../contract/claim-store.contract.ts'

claimStoreContract('InMemoryClaimStore', () => new InMemoryClaimStore())
