import { systemClock } from '../../../certs/index.ts'
import { clockContract } from '../../contract/clock.contract.ts'
import { fixedClock, offsetClock } from '../../helpers/clock.ts'

clockContract('systemClock', () => systemClock)
clockContract('fixedClock', () => fixedClock())
clockContract('offsetClock', () => {
  const clock = offsetClock()
  clock.advance('1h')
  return clock
})
