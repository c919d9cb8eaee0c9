#!/usr/bin/env node
// Entry point for the `gatehouse` command: runs the TypeScript sources through tsx, so there is no
// build step between a checkout and a working CLI.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../cli.ts')
process.exitCode = await main(process.argv)
