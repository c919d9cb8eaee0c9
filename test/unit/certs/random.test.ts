import { cryptoRandom } from '../../../certs/index.ts'
import { randomContract } from '../../contract/random.contract.ts'
import { fixedRandom, seededRandom } from '../../helpers/random.ts'

randomContract('cryptoRandom', () => cryptoRandom)
randomContract('seededRandom', () => seededRandom(7))
randomContract('fixedRandom', () => fixedRandom(0x42))
